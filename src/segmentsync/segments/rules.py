"""The rule tree of a segment: groups (AND / OR, optionally negated) of conditions.

A rule is plain JSON (stored in ``Segment.rules``)::

    {"op": "and", "negate": false, "items": [
        {"column": "country", "operator": "in", "value": ["PL", "LV"]},
        {"column": "last_purchase_at", "operator": "in_last_days", "value": 90},
        {"op": "or", "items": [
            {"column": "total_spend", "operator": "gt", "value": 100},
            {"column": "orders", "operator": "ge", "value": 5}]}]}

This module checks the *shape* (operators, how many values each takes, nesting limits); the
column names and the value types are checked against the profile table by ``compile.py``.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from segmentsync.errors import Invalid

MAX_DEPTH = 10
MAX_CONDITIONS = 500
MAX_LIST_VALUES = 10_000
MAX_DAYS = 36_500  # 100 years

Scalar = str | int | float | bool


class Operator(StrEnum):
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    IS_EMPTY = "is_empty"
    IS_NOT_EMPTY = "is_not_empty"
    BETWEEN = "between"
    IN_LAST_DAYS = "in_last_days"
    BEFORE_DAYS_AGO = "before_days_ago"


NO_VALUE = frozenset({Operator.IS_EMPTY, Operator.IS_NOT_EMPTY})
LIST_VALUE = frozenset({Operator.IN, Operator.NOT_IN})
DAYS_VALUE = frozenset({Operator.IN_LAST_DAYS, Operator.BEFORE_DAYS_AGO})
TEXT_MATCH = frozenset({Operator.CONTAINS, Operator.STARTS_WITH, Operator.ENDS_WITH})

SYMBOLS = {
    Operator.EQ: "=",
    Operator.NE: "≠",
    Operator.LT: "<",
    Operator.LE: "≤",
    Operator.GT: ">",
    Operator.GE: "≥",
    Operator.IN: "in",
    Operator.NOT_IN: "not in",
    Operator.CONTAINS: "contains",
    Operator.STARTS_WITH: "starts with",
    Operator.ENDS_WITH: "ends with",
    Operator.IS_EMPTY: "is empty",
    Operator.IS_NOT_EMPTY: "is not empty",
    Operator.BETWEEN: "between",
    Operator.IN_LAST_DAYS: "in the last",
    Operator.BEFORE_DAYS_AGO: "before",
}


class Condition(BaseModel):
    """``column operator value``; see ``docs/profiles-and-segments.md`` for each operator."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # no NaN, no Infinity

    column: str = Field(min_length=1, max_length=300)
    operator: Operator
    value: Scalar | list[Scalar] | None = None
    ignore_case: bool = False  # text comparisons: compare lower-cased (engine's lower())

    @field_validator("value", mode="before")
    @classmethod
    def _finite(cls, value: object) -> object:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"{item} is not a finite number")
        return value

    @model_validator(mode="after")
    def _value_fits_operator(self) -> Condition:
        problem = _value_problem(self.operator, self.value)
        if problem:
            raise ValueError(f"{self.column} {self.operator.value}: {problem}")
        return self

    def describe(self) -> str:
        symbol = SYMBOLS[self.operator]
        if self.operator in NO_VALUE:
            return f"{self.column} {symbol}"
        if self.operator is Operator.IN_LAST_DAYS:
            return f"{self.column} in the last {self.value} days"
        if self.operator is Operator.BEFORE_DAYS_AGO:
            return f"{self.column} before {self.value} days ago"
        if self.operator is Operator.BETWEEN and isinstance(self.value, list):
            low, high = self.value
            return f"{self.column} between {_show(low)} and {_show(high)}"
        if isinstance(self.value, list):
            return f"{self.column} {symbol} ({', '.join(_show(v) for v in self.value)})"
        suffix = " (ignoring case)" if self.ignore_case else ""
        return f"{self.column} {symbol} {_show(self.value)}{suffix}"


def _show(value: Any) -> str:
    return (
        repr(value)
        if isinstance(value, str)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )


def _value_problem(operator: Operator, value: object) -> str | None:
    """Why ``value`` does not fit ``operator`` (None when it does)."""
    if any(isinstance(v, str) and "\x00" in v for v in (value if isinstance(value, list) else [value])):
        # SQL engines cut text at a NUL (DuckDB) or refuse it (PostgreSQL): never a match, so say so
        return "text values cannot contain NUL characters (\\x00)"
    if operator in NO_VALUE:
        return None if value is None else "takes no value"
    if operator in LIST_VALUE:
        if not isinstance(value, list) or not value:
            return "needs a list of at least one value"
        return f"takes at most {MAX_LIST_VALUES} values" if len(value) > MAX_LIST_VALUES else None
    if operator is Operator.BETWEEN:
        ok = isinstance(value, list) and len(value) == 2
        return None if ok else "needs a list of two values: [low, high]"
    if operator in DAYS_VALUE:
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_DAYS
        return None if ok else f"needs a whole number of days from 0 to {MAX_DAYS}"
    if value is None or isinstance(value, list):
        hint = " (use is_empty / is_not_empty for missing values)" if value is None else ""
        return f"needs one value{hint}"
    return None


def _item_kind(value: Any) -> str:
    """Tell groups from conditions without a type tag: groups have ``items``."""
    if isinstance(value, dict):
        return "group" if "items" in value else "condition"
    return "group" if isinstance(value, Group) else "condition"


Item = Annotated[
    Annotated[Condition, Tag("condition")] | Annotated["Group", Tag("group")],
    Discriminator(_item_kind),
]


class Group(BaseModel):
    """Conditions and groups joined by AND or OR; ``negate`` takes the exact complement.

    An empty AND group matches every profile; an empty OR group matches none.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # no NaN, no Infinity

    op: Literal["and", "or"] = "and"
    negate: bool = False
    items: list[Item] = Field(default_factory=list)

    @model_validator(mode="after")
    def _limits(self) -> Group:
        if self.depth() > MAX_DEPTH:
            raise ValueError(f"groups are nested more than {MAX_DEPTH} deep")
        if sum(1 for _ in self.conditions()) > MAX_CONDITIONS:
            raise ValueError(f"a rule has at most {MAX_CONDITIONS} conditions")
        return self

    def depth(self) -> int:
        return 1 + max((item.depth() for item in self.items if isinstance(item, Group)), default=0)

    def conditions(self) -> list[Condition]:
        found: list[Condition] = []
        for item in self.items:
            found.extend(item.conditions() if isinstance(item, Group) else [item])
        return found

    def columns(self) -> list[str]:
        """Every column the rule reads, once, in order of appearance."""
        return list(dict.fromkeys(condition.column for condition in self.conditions()))

    def describe(self) -> str:
        """The rule in words, e.g. ``country in ('PL', 'LV') AND total_spend > 100``."""
        if not self.items:
            text = "everyone" if self.op == "and" else "no one"
        else:
            joiner = f" {self.op.upper()} "
            text = joiner.join(
                f"({item.describe()})" if _needs_brackets(item) else item.describe() for item in self.items
            )
        return f"NOT ({text})" if self.negate else text


def _needs_brackets(item: Condition | Group) -> bool:
    return isinstance(item, Group) and len(item.items) > 1 and not item.negate


Group.model_rebuild()


def parse(data: object) -> Group:
    """A rule from JSON data (a dict) or a JSON text; Invalid, saying where, if it is malformed."""
    try:
        if isinstance(data, str | bytes):
            return Group.model_validate_json(data)
        return Group.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in ("rules", *first["loc"]) if not _is_tag(part))
        raise Invalid(
            "%(where)s: %(value)s",
            params={"where": where, "value": first["msg"].removeprefix("Value error, ")},
            field=where,
            details={"errors": [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]},
        ) from exc


def _is_tag(part: object) -> bool:
    # pydantic puts the discriminator's tag ("condition"/"group") into error locations
    return part in ("condition", "group")
