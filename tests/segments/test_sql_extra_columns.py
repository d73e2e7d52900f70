"""Columns a SQL segment returns besides the key (an export maps them to list fields), on every
engine: their names and types, joined to the members by the key, and a key returned twice found."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from segmentsync.profiles.source import ExtraColumns, KeyQuery, ProfileSource
from segmentsync.segments import sql
from segmentsync.segments.rules import parse

from .orders import add_orders

SPENT_SQL = """
SELECT p.profile_id, sum(o.amount) AS spent, count(*) AS orders
FROM profiles AS p
JOIN orders AS o ON o.profile_id = p.profile_id
GROUP BY p.profile_id
HAVING sum(o.amount) > 100
"""
# Not aggregated: profile 1 has two orders.
EACH_ORDER_SQL = "SELECT o.profile_id, o.amount FROM orders AS o"
LATVIANS = parse({"items": [{"column": "country", "operator": "eq", "value": "LV"}]})  # 2, 10


@pytest.fixture(scope="module")
def source(engine_source: ProfileSource) -> ProfileSource:
    add_orders(engine_source)
    return engine_source


def checked(source: ProfileSource, text: str) -> KeyQuery:
    return KeyQuery(sql.check(text, source.engine).sql)


def number(value: object) -> object:
    return float(value) if isinstance(value, Decimal) else value


def test_the_extra_columns_arrive_with_the_members_by_key(source: ProfileSource) -> None:
    query = checked(source, SPENT_SQL)
    schema = source.query_schema(query)
    assert list(schema.names) == ["profile_id", "spent", "orders"]
    assert schema["spent"].is_numeric()
    assert schema["orders"].is_integer()

    extra = ExtraColumns(query, (("spent", "segment.spent"), ("orders", "segment.orders")), schema)
    members = source.members([query, LATVIANS], ["email"], extras=[extra])
    assert members.columns == ("profile_id", "email", "segment.spent", "segment.orders")
    rows = pa.Table.from_batches(list(source.stream(members))).to_pylist()
    found = {row["profile_id"]: (number(row["segment.spent"]), row["segment.orders"]) for row in rows}
    # the query's members with its values; the rule's members (not in the query) with none
    assert found == {1: (130.0, 2), 12: (300.0, 1), 2: (None, None), 10: (None, None)}
    assert source.repeated_key(members) is None


def test_a_key_the_query_returns_twice_is_found(source: ProfileSource) -> None:
    query = checked(source, EACH_ORDER_SQL)
    extra = ExtraColumns(query, (("amount", "segment.amount"),), source.query_schema(query))
    members = source.members([query], ["email"], extras=[extra])
    assert source.repeated_key(members) == (1, 2)  # profile 1: two orders
