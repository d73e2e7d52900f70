"""The run's workspace: an in-process DuckDB where the snapshot and the plan do their row work.

One per run attempt, in a temporary folder under ``<data dir>/work`` that it spills into when its
memory cap is reached; closed (and the folder removed) when the run leaves it. The metadata store
gets only what must survive a crash (the plan, the outcomes, the delivered state); the million-row
join, de-duplication and JSON rendering are column work that DuckDB does here and throws away.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

MEMORY_LIMIT = "160MB"  # the workspace spills to its temporary folder beyond this (peak RSS vs time)
# While the plan is read out as it is sent (a chunk at a time, in order), the workspace needs
# little memory: what it holds beyond this spills, and the sender's own memory comes on top.
SENDING_MEMORY_LIMIT = "48MB"
# While the rows to send are sorted by e-mail (planner._SEND): the sort spills beyond this instead
# of adding to the run's peak (1,000,000 members: ≈ 20 MB more at the 160MB cap).
SORTING_MEMORY_LIMIT = "128MB"


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


def size_bytes(text: str) -> float:
    """Bytes in a DuckDB memory size as it is set ("160MB") or shown ("152.5 MiB")."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", text)
    if match is None or match[2].lower() not in _UNITS:
        raise ValueError(f"not a memory size: {text!r}")
    return float(match[1]) * _UNITS[match[2].lower()]


class Workspace:
    """One run's in-process DuckDB, with a temporary folder it may spill into; closed after use."""

    def __init__(self, parent: Path, *, memory_limit: str = MEMORY_LIMIT) -> None:
        parent.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
        self.con = duckdb.connect(":memory:")  # no WAL to write; spills to temp_directory when full
        self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.con.execute("SET temp_directory = ?", [str(self.folder / "spill")])
        self.con.execute("SET TimeZone = 'UTC'")  # dates of timestamps as the platforms see them

    def limit_memory(self, memory_limit: str) -> None:
        """A new cap (e.g. lower while the plan is only read out, row by row, as it is sent)."""
        self.con.execute(f"SET memory_limit = '{memory_limit}'")

    @contextmanager
    def memory_at_most(self, memory_limit: str) -> Iterator[None]:
        """A lower cap for a while: ``memory_limit``, or the workspace's own if that is lower."""
        row = self.con.execute("SELECT current_setting('memory_limit')").fetchone()
        before = str(row[0]) if row else ""
        if size_bytes(memory_limit) >= size_bytes(before):
            yield
            return
        self.con.execute(f"SET memory_limit = '{memory_limit}'")
        try:
            yield
        finally:
            self.con.execute(f"SET memory_limit = '{before}'")

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        row = self.con.execute(sql, list(params)).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sql_path(path: Path) -> str:
    """A path of the workspace's own folder as the text of a SQL string literal."""
    return str(path).replace("'", "''")
