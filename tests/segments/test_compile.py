"""Compiling rules: unknown columns, type mismatches and hostile input give clear Invalid errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ibis
import pytest

from segmentsync.errors import Invalid
from segmentsync.segments.compile import compile_filter
from segmentsync.segments.rules import parse

from .dataset import NOW

TABLE = ibis.table(
    {
        "profile_id": "int64",
        "email": "string",
        "country": "string",
        "orders": "int32",
        "total_spend": "decimal(12, 2)",
        "score": "float64",
        "consent_email": "boolean",
        "signup_date": "date",
        "last_purchase_at": "timestamp('UTC')",
        "tags": "array<string>",
    },
    name="profiles",
)


def one(column: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"items": [{"column": column, "operator": operator, "value": value, **extra}]}


def compile_(rule: dict[str, Any]) -> None:
    compile_filter(parse(rule), TABLE, now=NOW)


@pytest.mark.parametrize(
    ("column", "suggested"),
    [
        ("contry", ["country"]),
        ("Country", ["country"]),
        ("EMAIL", ["email"]),
        ('email"; DROP TABLE profiles; --', []),
        ("country OR 1=1", ["country"]),  # a close match is only suggested, never used
        ("nąme", []),
    ],
)
def test_unknown_columns_are_named_with_close_matches(column: str, suggested: list[str]) -> None:
    with pytest.raises(Invalid) as info:
        compile_(one(column, "eq", "x"))
    error = info.value
    assert error.code == "unknown_column"
    assert error.field == "rules.items[0].column"
    assert repr(column)[:40] in error.message
    assert error.details["close_matches"] == suggested
    if suggested:
        assert f"did you mean {suggested[0]!r}" in error.message
    assert "columns: profile_id, email" in error.message


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        (one("orders", "gt", "abc"), "'abc' is not a whole number; column 'orders' holds whole numbers"),
        (one("orders", "eq", 1.5), "1.5 is not a whole number"),
        (one("orders", "eq", True), "True is not a whole number"),
        (one("orders", "gt", 2**64), "out of range"),
        (one("orders", "contains", "1"), "contains does not apply to 'orders', which holds whole numbers"),
        (one("total_spend", "gt", "lots"), "'lots' is not a number"),
        (one("total_spend", "gt", "NaN"), "not a finite number"),
        (one("score", "lt", "inf"), "not a finite number"),
        (one("consent_email", "eq", "yes"), "'yes' is not true or false"),
        (one("consent_email", "gt", True), "gt does not apply to 'consent_email'"),
        (one("signup_date", "lt", "yesterday"), "'yesterday' is not a date (write it as YYYY-MM-DD)"),
        (one("signup_date", "lt", 20240101), "20240101 is not a date"),
        (one("last_purchase_at", "gt", "soon"), "'soon' is not a date and time"),
        (one("email", "in_last_days", 5), "in_last_days does not apply to 'email', which holds text"),
        (one("email", "eq", 1.5), "1.5 is not text"),
        (one("email", "eq", False), "False is not text"),
        (one("tags", "eq", "x"), "eq does not apply to 'tags', which holds values of another kind"),
        (one("orders", "between", [5, 1]), "between needs low ≤ high"),
        (one("signup_date", "between", ["2025-02-01", "2025-01-01"]), "between needs low ≤ high"),
        (one("orders", "eq", 1, ignore_case=True), "ignore_case applies to text columns only"),
    ],
)
def test_values_that_do_not_fit_name_the_condition(rule: dict[str, Any], says: str) -> None:
    with pytest.raises(Invalid) as info:
        compile_(rule)
    assert says in info.value.message
    assert info.value.message.startswith("rules.items[0] (")
    assert info.value.code == "invalid_rule"


def test_a_nested_condition_is_named_by_its_path() -> None:
    rule = {"items": [{"column": "country", "operator": "eq", "value": "PL"},
                      {"op": "or", "items": [{"column": "orders", "operator": "eq", "value": 1},
                                             {"column": "orders", "operator": "gt", "value": "x"}]}]}  # fmt: skip
    with pytest.raises(Invalid) as info:
        compile_(rule)
    assert info.value.field == "rules.items[1].items[1].value"
    assert "(orders > 'x')" in info.value.message


@pytest.mark.parametrize(
    "rule",
    [
        one("orders", "eq", "42"),  # a numeric string for a number column
        one("orders", "eq", 42.0),
        one("email", "eq", 12345),  # a whole number for a text column (zip codes)
        one("consent_email", "eq", "TRUE"),
        one("total_spend", "between", ["10", 20.5]),
        one("total_spend", "gt", "123456789012345678901234.5"),  # wider than the column: a float
        one("signup_date", "in", ["2025-01-01", "2025-02-01"]),
        one("last_purchase_at", "lt", "2025-01-01T10:00:00Z"),
        one("tags", "is_not_empty"),
    ],
)
def test_friendly_values_are_accepted(rule: dict[str, Any]) -> None:
    compile_(rule)


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        compile_filter(parse(one("signup_date", "in_last_days", 1)), TABLE, now=datetime(2025, 1, 1))


@pytest.mark.parametrize(
    "value",
    [
        "'; DROP TABLE profiles; --",
        "x' OR '1'='1",
        'a"b',
        "back\\slash",
        "50%_off",
        "zoë ŁÓDŹ 東京 🙂",
        "line\nbreak",
    ],
)
def test_hostile_values_are_literals_in_the_sql(value: str) -> None:
    """The value is one string literal: the SQL parses back to the same single comparison."""
    import sqlglot

    expr = TABLE.filter(compile_filter(parse(one("email", "eq", value)), TABLE, now=NOW))
    for dialect in ("duckdb", "postgres"):
        sql = ibis.to_sql(expr, dialect=dialect)
        tree = sqlglot.parse_one(sql, read=dialect)
        literals = [lit.this for lit in tree.find_all(sqlglot.exp.Literal) if lit.is_string]
        assert literals == [value]
        assert "DROP" not in [t.key.upper() for t in tree.walk()]


def test_nul_characters_are_refused_before_any_sql() -> None:
    """DuckDB cuts a query's text at a NUL (a parser error: a 500) and PostgreSQL refuses it."""
    with pytest.raises(Invalid, match="cannot contain NUL characters"):
        parse(one("email", "eq", "nul\x00byte"))
