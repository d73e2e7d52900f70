"""Real tables whose column names look like SQL: they are identifiers, quoted, never code."""

from __future__ import annotations

from pathlib import Path

import ibis
import pyarrow as pa
import pytest

from segmentsync.profiles.source import ProfileSource
from segmentsync.segments.rules import parse

ODD = pa.table(
    {
        "id": [1, 2, 3],
        'say "hi"': ["a", "b", None],
        "select": [10, 20, 30],
        "1; DROP TABLE odd; --": ["x'y", "z", "x'y"],
        "Ünïcödé kolumna": ["Łódź", "Rīga", "Köln"],
    }
)
RULE = {
    "op": "or",
    "items": [
        {"column": 'say "hi"', "operator": "eq", "value": "b"},
        {"column": "select", "operator": "ge", "value": 30},
        {"column": "Ünïcödé kolumna", "operator": "eq", "value": "Łódź"},
    ],
}


def check(source: ProfileSource) -> None:
    assert source.columns()["1; DROP TABLE odd; --"] == "string"
    members = source.members([parse(RULE)], ["1; DROP TABLE odd; --", "Ünïcödé kolumna"])
    rows = [row for batch in source.stream(members) for row in batch.to_pylist()]
    assert sorted(row["id"] for row in rows) == [1, 2, 3]
    quoted = parse({"items": [{"column": "1; DROP TABLE odd; --", "operator": "eq", "value": "x'y"}]})
    assert source.count(source.segment(quoted)) == 2
    assert source.row_count() == 3  # the table is still there


def test_duckdb(tmp_path: Path) -> None:
    path = tmp_path / "odd.duckdb"
    con = ibis.duckdb.connect(path)
    con.create_table("odd", ODD)
    con.disconnect()
    check(ProfileSource(f"duckdb://{path}", table="odd", key="id"))


@pytest.mark.postgres
def test_postgres(postgres_profiles: ProfileSource) -> None:
    con = ibis.connect("postgres://" + postgres_profiles.url.split("://", 1)[1])
    con.create_table("odd", ODD, overwrite=True)
    con.disconnect()
    check(ProfileSource(postgres_profiles.url, table="odd", key="id"))
