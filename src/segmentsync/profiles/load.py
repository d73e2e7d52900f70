"""Load a CSV / Parquet / JSON lines file into the embedded DuckDB profile store.

The file is read into a staging table, checked (key column present, no empty or duplicate keys,
and for ``append`` matching columns and no keys already loaded), then swapped in with one
transaction. Any failure leaves the previous profile table exactly as it was.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import duckdb

from segmentsync.errors import Invalid
from segmentsync.profiles import store
from segmentsync.profiles.readers import Reader, detect_format, explain, make_reader

# progress(phase, fraction done or None): phases "reading", "checking", "saving"
Progress = Callable[[str, float | None], None]
EXAMPLES = 5


class LoadMode(StrEnum):
    REPLACE = "replace"
    APPEND = "append"


@dataclass(frozen=True)
class LoadResult:
    table: str
    rows: int  # rows loaded from the file
    total_rows: int  # rows in the table afterwards
    columns: list[str]
    mode: LoadMode
    seconds: float


def check_file(file: Path, *, root: Path | None = None) -> Path:
    """The resolved path of a regular file; inside ``root`` when one is given (uploads)."""
    resolved = file.expanduser().resolve()
    if root is not None and not resolved.is_relative_to(root.resolve()):
        raise Invalid(f"{file} is outside the folder files may be loaded from ({root})", field="file")
    if not resolved.exists():
        raise Invalid(f"{file} does not exist", field="file")
    if not resolved.is_file():
        raise Invalid(
            f"{file} is not a regular file (a folder, device or pipe cannot be loaded)", field="file"
        )
    if resolved.stat().st_size == 0:
        raise Invalid(f"{file} is empty", field="file")
    return resolved


def load_file(
    store_path: Path,
    file: Path,
    *,
    table: str = "profiles",
    key: str = "profile_id",
    mode: LoadMode = LoadMode.REPLACE,
    file_format: str | None = None,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    scan_all: bool = False,
    root: Path | None = None,
    progress: Progress | None = None,
    lock_wait: float = store.LOCK_WAIT_SECONDS,
) -> LoadResult:
    """Load ``file`` into ``table`` of the DuckDB file at ``store_path``."""
    started = time.perf_counter()
    store.check_identifier(table, what="table name")
    resolved = check_file(file, root=root)
    reader = make_reader(
        resolved,
        detect_format(resolved, file_format),
        encoding=encoding,
        delimiter=delimiter,
        scan_all=scan_all,
    )
    report = progress or (lambda _phase, _fraction: None)
    with store.writer(store_path, lock_wait=lock_wait) as con:
        try:
            store.drop_staging(con, table)
            _stage(con, reader, table, report)
            report("checking", None)
            columns = store.column_names(con, store.staging_name(table))
            appending = mode is LoadMode.APPEND and store.table_exists(con, table)
            rows = _validate(con, reader.file.name, table, key, columns, appending=appending)
            report("saving", None)
            store.swap_in(con, table, append=appending)
            total = _count(con, store.quote(table))
        finally:
            store.drop_staging(con, table)
    return LoadResult(table, rows, total, columns, mode, time.perf_counter() - started)


def _stage(con: duckdb.DuckDBPyConnection, reader: Reader, table: str, report: Progress) -> None:
    """Read the file into the staging table, reporting DuckDB's progress from a second thread."""
    staging = store.quote(store.staging_name(table))
    failure: list[duckdb.Error] = []

    def run() -> None:
        try:
            con.execute(f"CREATE TABLE {staging} AS {reader.sql}", reader.params)
        except duckdb.Error as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, name="profiles-load", daemon=True)
    report("reading", 0.0)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        done = con.query_progress()
        if done >= 0:
            report("reading", min(done, 100.0) / 100)
    if failure:
        raise explain(con, reader, failure[0]) from failure[0]
    report("reading", 1.0)


def _validate(
    con: duckdb.DuckDBPyConnection, name: str, table: str, key: str, columns: list[str], *, appending: bool
) -> int:
    """Check the staging table; return its row count."""
    staging = store.quote(store.staging_name(table))
    if key not in columns:
        near = [c for c in columns if c.lower() == key.lower()]
        hint = f" (there is {near[0]!r}: names are case-sensitive)" if near else ""
        raise Invalid(
            f"{name} has no key column {key!r}{hint}; its columns are: {', '.join(columns)}. "
            f"Pass --key COLUMN to use another one",
            code="no_key_column",
            field="key",
        )
    quoted_key = store.quote(key)
    empty = _count(con, staging, f"{quoted_key} IS NULL")
    if empty:
        raise Invalid(f"{name}: {empty:,} row(s) have no value in the key column {key!r}", code="empty_keys")
    _check_duplicates(con, name, staging, key)
    if appending:
        _check_append(con, name, table, key, columns)
    return _count(con, staging)


def _check_duplicates(con: duckdb.DuckDBPyConnection, name: str, staging: str, key: str) -> None:
    quoted = store.quote(key)
    rows = con.execute(  # identifiers quoted by store.quote; no values in the text
        f"SELECT {quoted}, count(*) AS n, count(*) OVER () AS keys FROM {staging} "  # noqa: S608
        f"GROUP BY {quoted} HAVING count(*) > 1 ORDER BY n DESC, {quoted} LIMIT {EXAMPLES}"
    ).fetchall()
    if rows:
        examples = ", ".join(f"{value!r} ×{count}" for value, count, _ in rows)
        raise Invalid(
            f"{name}: {rows[0][2]:,} key value(s) of {key!r} appear more than once (for example "
            f"{examples}); every profile needs its own key",
            code="duplicate_keys",
            details={"duplicate_keys": rows[0][2], "examples": [str(value) for value, _, _ in rows]},
        )


def _check_append(
    con: duckdb.DuckDBPyConnection, name: str, table: str, key: str, columns: list[str]
) -> None:
    existing = store.column_names(con, table)
    extra = [c for c in columns if c not in existing]
    if extra:
        raise Invalid(
            f"{name} has columns the table {table!r} does not: {', '.join(extra)}; load with --mode "
            f"replace to change the columns",
            code="column_mismatch",
        )
    quoted_key = store.quote(key)
    staging = store.quote(store.staging_name(table))
    rows = con.execute(  # identifiers quoted by store.quote; no values in the text
        f"SELECT s.{quoted_key}, count(*) OVER () FROM {staging} AS s "  # noqa: S608
        f"JOIN {store.quote(table)} AS t ON s.{quoted_key} = t.{quoted_key} ORDER BY 1 LIMIT {EXAMPLES}"
    ).fetchall()
    if rows:
        examples = ", ".join(repr(value) for value, _ in rows)
        raise Invalid(
            f"{name}: {rows[0][1]:,} key value(s) are in the table {table!r} already (for example "
            f"{examples}); append adds new profiles only — use --mode replace to reload",
            code="duplicate_keys",
        )


def _count(con: duckdb.DuckDBPyConnection, table: str, where: str = "TRUE") -> int:
    """Rows of a quoted table name matching a condition written in this module (no values)."""
    row = con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()  # noqa: S608  # see docstring
    return int(row[0]) if row else 0
