"""``segmentsync.lean``: a process that refuses pandas still runs DuckDB and Arrow work."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    from segmentsync import lean

    assert lean.refuse_pandas() is True
    import duckdb
    import pyarrow as pa

    con = duckdb.connect()
    con.register("t", pa.table({"a": [1, 2, 3]}))  # PyArrow's shim and DuckDB's scan look for pandas
    assert con.execute("SELECT sum(a) + ? FROM t", [10]).fetchone() == (16,)  # a bound value too
    assert "pandas" not in sys.modules
    try:
        import pandas  # noqa: F401
    except ModuleNotFoundError as exc:
        assert exc.name == "pandas", exc
    else:
        raise AssertionError("pandas was imported")
    lean.allow_pandas()
    import pandas  # noqa: F401,F811
    assert lean.refuse_pandas() is False  # too late: it is loaded
    print("ok")
    """
)


def test_refused_pandas_is_not_installed_to_duckdb_and_arrow_and_can_be_allowed_again() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
