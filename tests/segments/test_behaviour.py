"""Which profiles a rule selects — the same answers on DuckDB, PostgreSQL and Spark.

Every case below is checked on each engine; all cases of one engine run in one query (one
``array_agg`` per case), so Spark costs one query. ``NOW`` is 2025-06-01 12:00 UTC.
"""

from __future__ import annotations

from typing import Any

import ibis
import pytest

from segmentsync.profiles.source import ProfileSource
from segmentsync.segments.compile import compile_filter
from segmentsync.segments.rules import Group, parse

from .dataset import ALL_IDS, NOW


def c(column: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"column": column, "operator": operator, "value": value, **extra}


def both(*items: dict[str, Any], op: str = "and", negate: bool = False) -> dict[str, Any]:
    return {"op": op, "negate": negate, "items": list(items)}


def but(*ids: int) -> list[int]:
    return [i for i in ALL_IDS if i not in ids]


CASES: dict[str, tuple[dict[str, Any], list[int]]] = {
    # equality and lists; a NULL country counts as "not PL"
    "eq": (both(c("country", "eq", "PL")), [1, 3, 9, 12]),
    "ne includes NULL": (both(c("country", "ne", "PL")), [2, 4, 5, 6, 7, 8, 10, 11]),
    "in": (both(c("country", "in", ["PL", "LV"])), [1, 2, 3, 9, 10, 12]),
    "not_in includes NULL": (both(c("country", "not_in", ["PL", "LV"])), [4, 5, 6, 7, 8, 11]),
    "in with a quote": (both(c("email", "in", ["a@x.pl", "o'brien@x.com", "nobody"])), [1, 4]),
    # emptiness: NULL or '' for text, NULL otherwise
    "is_empty text": (both(c("email", "is_empty")), [3, 6]),
    "is_not_empty text": (both(c("email", "is_not_empty")), but(3, 6)),
    "is_empty other": (both(c("country", "is_empty")), [7]),
    "is_empty boolean": (both(c("consent_email", "is_empty")), [3, 7]),
    # numbers: integers, decimals (a numeric string is a number)
    "gt integer": (both(c("orders", "gt", 4)), [1, 4, 8, 12]),
    "le integer": (both(c("orders", "le", 1)), [2, 5, 9, 11]),
    "between integer": (both(c("orders", "between", [2, 5])), [1, 3, 6, 10]),
    "gt decimal": (both(c("total_spend", "gt", 100)), [1, 4, 6, 8, 10, 12]),
    "ge decimal from text": (both(c("total_spend", "ge", "100.00")), [1, 4, 6, 8, 9, 10, 12]),
    "eq decimal": (both(c("total_spend", "eq", 100.01)), [10]),
    "lt decimal": (both(c("total_spend", "lt", 0.5)), [2, 11]),
    # booleans; "ne true" includes NULL
    "eq boolean": (both(c("consent_email", "eq", True)), [1, 4, 6, 8, 10, 11, 12]),
    "ne boolean": (both(c("consent_email", "ne", True)), [2, 3, 5, 7, 9]),
    # dates and timestamps
    "lt date": (both(c("signup_date", "lt", "2020-01-01")), [4, 12]),
    "between dates": (both(c("signup_date", "between", ["2025-01-01", "2025-06-01"])), [3, 9, 11]),
    "date in_last_days": (both(c("signup_date", "in_last_days", 7)), [3, 11]),
    "date before_days_ago": (both(c("signup_date", "before_days_ago", 1000)), [1, 4, 8, 10, 12]),
    "timestamp in_last_days (boundary kept)": (
        both(c("last_purchase_at", "in_last_days", 90)),
        [1, 4, 6, 8, 9, 10],
    ),
    "timestamp before_days_ago": (both(c("last_purchase_at", "before_days_ago", 90)), [3, 5, 12]),
    "gt timestamp": (both(c("last_purchase_at", "gt", "2025-06-01T11:30:00")), [9]),
    "gt timestamp with offset": (both(c("last_purchase_at", "gt", "2025-06-01T13:30:00+02:00")), [9]),
    "le timestamp given a date": (both(c("last_purchase_at", "le", "2025-03-01")), [3, 5, 12]),
    # text matching: wildcards, quotes and backslashes are data; case matters unless ignored
    "contains %": (both(c("email", "contains", "%")), [7]),
    "contains _": (both(c("email", "contains", "_")), [7]),
    "contains quote": (both(c("email", "contains", "'")), [4, 5]),
    "contains double quote": (both(c("email", "contains", '"')), [11]),
    "contains backslash": (both(c("email", "contains", "\\")), [9]),
    "starts_with SQL": (both(c("email", "starts_with", "'; DROP")), [5]),
    "eq SQL fragment": (both(c("email", "eq", "'; DROP TABLE profiles; --")), [5]),
    "ends_with": (both(c("email", "ends_with", "@gmail.com")), [12]),
    "ends_with ignoring case": (both(c("email", "ends_with", "@gmail.com", ignore_case=True)), [2, 12]),
    "eq ignoring case": (both(c("email", "eq", "upper@example.com", ignore_case=True)), [10]),
    "eq minds case": (both(c("email", "eq", "upper@example.com")), []),
    "unicode eq": (both(c("city", "eq", "Łódź")), [9]),
    "unicode contains": (both(c("city", "contains", "väs")), [6]),
    "unicode in email": (both(c("email", "contains", "ë")), [8]),
    # groups
    "or": (both(c("country", "eq", "US"), c("orders", "ge", 20), op="or"), [4, 12]),
    "negated group is the complement": (
        both(c("country", "eq", "PL"), c("orders", "gt", 1), negate=True),
        but(1, 3, 12),
    ),
    "nested": (
        both(
            c("country", "in", ["PL", "LV"]),
            both(c("total_spend", "gt", 100), c("last_purchase_at", "in_last_days", 90), op="or"),
        ),
        [1, 9, 10, 12],
    ),
    "typical segment": (
        both(
            c("country", "in", ["PL", "LV"]),
            c("last_purchase_at", "in_last_days", 90),
            c("total_spend", "gt", 100),
        ),
        [1, 10],
    ),
    "empty and: everyone": (both(), ALL_IDS),
    "empty or: no one": (both(op="or"), []),
    "negated empty or: everyone": (both(op="or", negate=True), ALL_IDS),
}


@pytest.fixture(scope="session")
def answers(engine_source: ProfileSource) -> dict[str, list[int]]:
    """Every case's matching ids on one engine, from one query."""
    table = engine_source.table()
    aggregates = {
        f"c{i}": table.profile_id.collect(where=compile_filter(parse(rule), table, now=NOW))
        for i, (rule, _) in enumerate(CASES.values())
    }
    stream = engine_source.stream(table.aggregate(**aggregates))
    (row,) = next(iter(stream)).to_pylist()
    return {name: sorted(row[f"c{i}"] or []) for i, name in enumerate(CASES)}


@pytest.mark.parametrize("case", list(CASES))
def test_rule_selects(case: str, answers: dict[str, list[int]]) -> None:
    assert answers[case] == CASES[case][1]


def test_count_and_stream_agree_with_the_rule(engine_source: ProfileSource) -> None:
    rule = parse(CASES["typical segment"][0])
    members = engine_source.segment(rule, now=NOW)
    assert engine_source.count(members) == 2
    batches = list(engine_source.stream(members.select("profile_id", "email"), batch_rows=1))
    assert [b.num_rows for b in batches] == [1, 1]
    assert sorted(v for b in batches for v in b.column("profile_id").to_pylist()) == [1, 10]


def test_members_of_several_segments_once_each(engine_source: ProfileSource) -> None:
    rules: list[Group] = [
        parse(both(c("country", "eq", "PL"))),  # 1, 3, 9, 12
        parse(both(c("orders", "ge", 5))),  # 1, 4, 8, 12 (1 and 12 are in both)
        parse(both(c("email", "contains", "%"))),  # 7
    ]
    members = engine_source.members(rules, ["email", "country"], now=NOW)
    assert members.columns == ("profile_id", "email", "country")
    rows = [row for batch in engine_source.stream(members, batch_rows=4) for row in batch.to_pylist()]
    assert sorted(row["profile_id"] for row in rows) == [1, 3, 4, 7, 8, 9, 12]
    assert engine_source.count(members) == 7
    assert engine_source.counts(rules, now=NOW) == [4, 4, 1]


def test_columns_are_introspected(engine_source: ProfileSource) -> None:
    assert engine_source.columns() == {
        "profile_id": "integer",
        "email": "string",
        "country": "string",
        "city": "string",
        "orders": "integer",
        "total_spend": "float",
        "consent_email": "boolean",
        "signup_date": "date",
        "last_purchase_at": "timestamp",
    }


def test_preview_is_ordered_by_key(engine_source: ProfileSource) -> None:
    expr = engine_source.members([parse(both(c("country", "in", ["PL", "LV"])))], ["city"], now=NOW)
    rows = engine_source.preview(expr, limit=3).to_pylist()
    assert rows == [
        {"profile_id": 1, "city": "Warszawa"},
        {"profile_id": 2, "city": "Rīga"},
        {"profile_id": 3, "city": None},
    ]


def test_an_unbound_table_compiles_too() -> None:
    """compile_filter needs only the schema: it is pure and never touches an engine."""
    table = ibis.table({"profile_id": "int64", "country": "string"}, name="profiles")
    expr = compile_filter(parse(both(c("country", "eq", "PL"))), table, now=NOW)
    assert expr.type().is_boolean()
