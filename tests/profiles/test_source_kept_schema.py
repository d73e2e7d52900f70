"""A DuckDB profile file's table is read once and kept until the file changes: a load that adds
a column, drops the table or replaces the file is seen by the next call (the cache only spares
opening the file, 40-60 ms, for every count and preview)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from segmentsync.errors import NotFound
from segmentsync.profiles import store
from segmentsync.profiles.source import ProfileSource


def _write(db: Path, sql: str) -> None:
    with store.writer(db) as con:
        con.execute(sql)


def test_the_kept_table_follows_the_file(tmp_path: Path) -> None:
    db = tmp_path / "profiles.duckdb"
    _write(
        db,
        "CREATE TABLE profiles AS SELECT i AS profile_id, 'p' || i || '@x.com' AS email FROM range(5) t(i)",
    )
    source = ProfileSource(f"duckdb://{db}")
    first = source.table()
    assert source.table() is first  # kept
    assert list(source.columns()) == ["profile_id", "email"]
    assert source.row_count() == 5

    _write(
        db,
        "ALTER TABLE profiles ADD COLUMN country VARCHAR; INSERT INTO profiles VALUES (9, 'q@x.com', 'PL')",
    )
    assert list(source.table().columns) == ["profile_id", "email", "country"]
    assert source.row_count() == 6

    _write(db, "DROP TABLE profiles")
    with pytest.raises(NotFound):
        source.table()

    db.unlink()
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE profiles AS SELECT 1 AS profile_id, 'only@x.com' AS email")
    con.close()
    assert list(source.table().columns) == ["profile_id", "email"]
    assert source.row_count() == 1
