"""The rule tree: JSON in and out, shape checks with clear messages, rules in words."""

from __future__ import annotations

import json
from typing import Any

import pytest

from segmentsync.errors import Invalid
from segmentsync.segments.rules import MAX_DEPTH, Condition, Group, Operator, parse

TYPICAL = {
    "op": "and",
    "items": [
        {"column": "country", "operator": "in", "value": ["PL", "LV"]},
        {"column": "last_purchase_at", "operator": "in_last_days", "value": 90},
        {
            "op": "or",
            "negate": True,
            "items": [
                {"column": "total_spend", "operator": "gt", "value": 100.5},
                {"column": "consent_email", "operator": "eq", "value": False},
            ],
        },
    ],
}


def test_round_trips_through_json() -> None:
    rule = parse(TYPICAL)
    again = parse(json.dumps(rule.model_dump(mode="json")))
    assert again == rule
    assert isinstance(rule.items[2], Group)
    assert isinstance(rule.items[0], Condition)
    assert rule.items[0].operator is Operator.IN
    assert rule.columns() == ["country", "last_purchase_at", "total_spend", "consent_email"]


def test_values_keep_their_json_types() -> None:
    rule = parse(TYPICAL)
    inner = rule.items[2]
    assert isinstance(inner, Group)
    values = [item.value for item in inner.items if isinstance(item, Condition)]
    assert values == [100.5, False]
    assert type(values[1]) is bool


def test_describe_reads_like_the_rule() -> None:
    assert parse(TYPICAL).describe() == (
        "country in ('PL', 'LV') AND last_purchase_at in the last 90 days AND "
        "NOT (total_spend > 100.5 OR consent_email = false)"
    )
    assert parse({"items": []}).describe() == "everyone"
    assert parse({"op": "or", "items": []}).describe() == "no one"


@pytest.mark.parametrize(
    ("rule", "where", "says"),
    [
        (
            {"items": [{"column": "x", "operator": "like", "value": 1}]},
            "rules.items.0.operator",
            "Input should be",
        ),
        ({"items": [{"column": "x", "operator": "eq"}]}, "rules.items.0", "use is_empty"),
        ({"items": [{"column": "x", "operator": "eq", "value": None}]}, "rules.items.0", "needs one value"),
        ({"items": [{"column": "x", "operator": "eq", "value": [1]}]}, "rules.items.0", "needs one value"),
        ({"items": [{"column": "x", "operator": "in", "value": []}]}, "rules.items.0", "at least one"),
        ({"items": [{"column": "x", "operator": "in", "value": "PL"}]}, "rules.items.0", "list"),
        ({"items": [{"column": "x", "operator": "between", "value": [1]}]}, "rules.items.0", "two values"),
        ({"items": [{"column": "x", "operator": "is_empty", "value": 1}]}, "rules.items.0", "takes no value"),
        (
            {"items": [{"column": "x", "operator": "in_last_days", "value": -1}]},
            "rules.items.0",
            "whole number",
        ),
        (
            {"items": [{"column": "x", "operator": "in_last_days", "value": "9"}]},
            "rules.items.0",
            "whole number",
        ),
        (
            {"items": [{"column": "x", "operator": "in_last_days", "value": True}]},
            "rules.items.0",
            "whole number",
        ),
        ({"items": [{"column": "", "operator": "eq", "value": 1}]}, "rules.items.0.column", "at least 1"),
        (
            {"items": [{"column": "x", "operator": "eq", "value": 1, "sql": "1=1"}]},
            "rules.items.0.sql",
            "Extra",
        ),
        ({"op": "xor", "items": []}, "rules.op", "Input should be"),
        (
            {"items": [{"op": "or", "items": [{"column": "x", "operator": "eq"}]}]},
            "rules.items.0.items.0",
            "one value",
        ),
    ],
)
def test_malformed_rules_say_where(rule: dict[str, Any], where: str, says: str) -> None:
    with pytest.raises(Invalid) as info:
        parse(rule)
    assert info.value.field == where
    assert says in info.value.message
    assert info.value.message.startswith(where)


def test_bad_json_text_is_invalid() -> None:
    with pytest.raises(Invalid, match="Invalid JSON"):
        parse("{not json")


def test_nesting_and_size_are_limited() -> None:
    rule: dict[str, Any] = {"column": "x", "operator": "eq", "value": 1}
    for _ in range(MAX_DEPTH + 1):
        rule = {"items": [rule]}
    with pytest.raises(Invalid, match="nested more than"):
        parse(rule)
    many = {"items": [{"column": "x", "operator": "eq", "value": i} for i in range(501)]}
    with pytest.raises(Invalid, match="at most 500 conditions"):
        parse(many)
