"""A SQL segment joining two tables selects the same members as the equivalent rule segment over
a view, on every engine: its count, its preview and the members an export reads."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import ibis
import pyarrow as pa
import pytest

from segmentsync.profiles.source import KeyQuery, ProfileSource
from segmentsync.segments import sql
from segmentsync.segments.rules import parse

# profile 1: 50 + 80; 4: 10; 12: 300; 2: 100 (not more than 100); 99: no such profile
ORDERS = pa.table(
    {
        "order_id": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
        "profile_id": pa.array([1, 1, 4, 12, 2, 99], pa.int64()),
        "amount": pa.array([50.0, 80.0, 10.0, 300.0, 100.0, 1.0], pa.float64()),
    }
)
BIG_SPENDERS = {1, 12}
SEGMENT_SQL = """
-- profiles whose orders add up to more than 100
SELECT p.profile_id
FROM profiles AS p
JOIN orders AS o ON o.profile_id = p.profile_id
GROUP BY p.profile_id
HAVING sum(o.amount) > 100
"""
VIEW_SQL = """
CREATE OR REPLACE VIEW profiles_spent AS
SELECT p.*, s.spent
FROM profiles AS p
JOIN (SELECT profile_id, sum(amount) AS spent FROM orders GROUP BY profile_id) AS s
  ON s.profile_id = p.profile_id
"""
RULE = parse({"items": [{"column": "spent", "operator": "gt", "value": 100}]})


def add_orders(source: ProfileSource) -> None:
    """The orders table and the view over profiles and orders, in the source's engine."""
    if source.engine == "duckdb":
        path = source.url.removeprefix("duckdb://")
        con = duckdb.connect(path)
        try:
            con.register("orders_data", ORDERS)
            con.execute("CREATE OR REPLACE TABLE orders AS SELECT * FROM orders_data")
            con.execute(VIEW_SQL)
        finally:
            con.close()
    elif source.engine == "postgres":
        con = ibis.connect("postgres://" + source.url.split("://", 1)[1])
        con.create_table("orders", ORDERS, overwrite=True)
        con.raw_sql(VIEW_SQL).close()
        con.disconnect()
    else:
        from pyspark.sql import SparkSession

        session = SparkSession.builder.getOrCreate()
        session.createDataFrame(ORDERS).write.mode("overwrite").saveAsTable("orders")
        session.sql(VIEW_SQL)


@pytest.fixture(scope="module")
def sources(engine_source: ProfileSource) -> Iterator[tuple[ProfileSource, ProfileSource]]:
    """(the profile table, the view) on one engine."""
    add_orders(engine_source)
    over_view = ProfileSource(engine_source.url, table="profiles_spent", lock_wait=1)
    yield engine_source, over_view
    if over_view.engine != "pyspark":
        over_view.close()


def keys(table: pa.Table) -> list[int]:
    return sorted(table.column("profile_id").to_pylist())


def test_sql_segment_and_rule_over_a_view_agree(sources: tuple[ProfileSource, ProfileSource]) -> None:
    profiles, view = sources
    query = KeyQuery(sql.check(SEGMENT_SQL, profiles.engine).sql)
    assert profiles.query_columns(query) == ["profile_id"]

    # counts (with a rule in the same call: the rules in one scan, the query on its own)
    everyone = parse({"items": []})
    assert profiles.counts([everyone, query]) == [12, len(BIG_SPENDERS)]
    assert view.counts([RULE]) == [len(BIG_SPENDERS)]

    # preview
    by_sql = profiles.preview(profiles.members([query], ["email"]), limit=10)
    by_rule = view.preview(view.members([RULE], ["email"]), limit=10)
    assert by_sql.to_pylist() == by_rule.to_pylist()
    assert keys(by_sql) == sorted(BIG_SPENDERS)

    # what a run reads: the members streamed, and their union with a rule segment
    streamed = pa.Table.from_batches(list(profiles.stream(profiles.members([query], ["email"]))))
    assert keys(streamed) == sorted(BIG_SPENDERS)
    latvians = parse({"items": [{"column": "country", "operator": "eq", "value": "LV"}]})  # 2, 10
    union = profiles.count(profiles.members([query, latvians], ["email"]))
    assert union == len(BIG_SPENDERS | {2, 10})
