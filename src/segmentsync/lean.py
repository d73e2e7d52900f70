"""Keep pandas out of the processes that never use it.

DuckDB's Python client and PyArrow import pandas by themselves: DuckDB the first time a query
binds a value or scans Arrow data (to check whether the value is a DataFrame), PyArrow when it
builds an array from Python objects (its pandas shim). In an export process that is ≈ 0.3 s and
40–50 MB of resident memory for a library no code path of ours uses with a DuckDB profile source
(segment counts and previews read Arrow straight from DuckDB: ``profiles.source._arrow``). Both
libraries treat a pandas that cannot be imported as one that is not installed, so the
``segmentsync`` command refuses the import when the profile source is DuckDB — the embedded
file, or any ``duckdb://`` URL (:func:`refuse_pandas`, called by ``cli.main``); other Ibis
engines (Spark, PostgreSQL …) may convert through pandas, and are left alone. Tests and library
users are never affected: only the command's own process installs the refusal.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

REFUSED = "pandas"


class _Refuse(importlib.abc.MetaPathFinder):
    """An import finder that answers "not installed" for pandas and its submodules."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == REFUSED or fullname.startswith(REFUSED + "."):
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (segmentsync: not used here)", name=fullname
            )
        return None


def refuse_pandas() -> bool:
    """From now on, ``import pandas`` fails in this process as if pandas were not installed.

    Returns False (and does nothing) if pandas is imported already.
    """
    if REFUSED in sys.modules:
        return False
    if not any(isinstance(finder, _Refuse) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Refuse())
    return True


def allow_pandas() -> None:
    """Undo :func:`refuse_pandas`."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _Refuse)]
