"""Compile a rule tree into an Ibis boolean expression over the profile table (a pure function).

Values become typed Ibis literals (never pasted into SQL text by us); column names are looked up
in the table's schema, so an unknown or hostile name is an :class:`Invalid` naming it, with close
matches. A value that does not fit its column (``"abc"`` for an integer column, ``contains`` on a
number) is an :class:`Invalid` naming the condition, by its path in the rule.

NULL semantics (two-valued: every condition is TRUE or FALSE, never NULL):

* a missing (NULL) value makes every condition FALSE, except ``ne``, ``not_in`` and
  ``is_empty``, which it makes TRUE: "country ≠ PL" includes profiles without a country;
* so a negated group is the exact complement of the group;
* ``is_empty`` on text is NULL or the empty string ``''``; on other types, NULL.

Dates: ``in_last_days N`` is ``today - N days ≤ value ≤ today`` for dates (``now - N days ≤ value
≤ now`` for timestamps); ``before_days_ago N`` is ``value < today - N days`` (``now - N days``).
"Today" is the UTC date of ``now``, which is injectable (default: the current time).
"""

from __future__ import annotations

import difflib
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import and_, or_

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from segmentsync.errors import N_, Invalid
from segmentsync.profiles.columns import ColumnType, column_type
from segmentsync.segments import values
from segmentsync.segments.rules import DAYS_VALUE, NO_VALUE, TEXT_MATCH, Condition, Group
from segmentsync.segments.rules import Operator as Op

COMPARISONS = frozenset({Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE, Op.IN, Op.NOT_IN, Op.BETWEEN})
ALLOWED: dict[ColumnType, frozenset[Op]] = {
    ColumnType.STRING: COMPARISONS | TEXT_MATCH | NO_VALUE,
    ColumnType.INTEGER: COMPARISONS | NO_VALUE,
    ColumnType.FLOAT: COMPARISONS | NO_VALUE,
    ColumnType.BOOLEAN: frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN}) | NO_VALUE,
    ColumnType.DATE: COMPARISONS | NO_VALUE | DAYS_VALUE,
    ColumnType.TIMESTAMP: COMPARISONS | NO_VALUE | DAYS_VALUE,
    ColumnType.OTHER: NO_VALUE,
}
TYPE_WORDS = {
    ColumnType.STRING: "text",
    ColumnType.INTEGER: "whole numbers",
    ColumnType.FLOAT: "numbers",
    ColumnType.BOOLEAN: "true/false values",
    ColumnType.DATE: "dates",
    ColumnType.TIMESTAMP: "dates and times",
    ColumnType.OTHER: "values of another kind",
}


def compile_filter(rule: Group, table: ir.Table, *, now: datetime | None = None) -> ir.BooleanValue:
    """The boolean Ibis expression selecting the profiles of ``table`` that ``rule`` describes."""
    moment = now if now is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return _Compiler(table, moment.astimezone(UTC)).group(rule, "rules")


def check(rule: Group, table: ir.Table) -> None:
    """Raise Invalid if ``rule`` does not fit the columns of ``table`` (nothing is run)."""
    compile_filter(rule, table)


class _Compiler:
    def __init__(self, table: ir.Table, now: datetime) -> None:
        self.table = table
        self.schema = dict(table.schema().items())
        self.now = now

    def group(self, group: Group, path: str) -> ir.BooleanValue:
        parts = [
            self.group(item, f"{path}.items[{i}]")
            if isinstance(item, Group)
            else self.condition(item, f"{path}.items[{i}]")
            for i, item in enumerate(group.items)
        ]
        if parts:
            expr: ir.BooleanValue = reduce(and_ if group.op == "and" else or_, parts)
        else:
            expr = ibis.literal(group.op == "and")  # AND of nothing: everyone; OR: no one
        return ~expr if group.negate else expr

    def condition(self, cond: Condition, path: str) -> ir.BooleanValue:
        dtype = self._dtype(cond, path)
        kind = column_type(dtype)
        if cond.operator not in ALLOWED[kind]:
            raise _invalid(
                cond,
                path,
                f"{cond.operator.value} does not apply to {cond.column!r}, which holds {TYPE_WORDS[kind]}",
                "operator",
            )
        if cond.ignore_case and kind is not ColumnType.STRING:
            raise _invalid(cond, path, "ignore_case applies to text columns only", "ignore_case")
        column = self.table[cond.column]
        if cond.operator in NO_VALUE:
            return _emptiness(column, kind, empty=cond.operator is Op.IS_EMPTY)
        if cond.operator in DAYS_VALUE:
            return self._days(cond, column, kind, dtype)
        try:
            return _compare(cond, column, kind, dtype)
        except values.Mismatch as exc:
            raise _invalid(
                cond, path, f"{exc}; column {cond.column!r} holds {TYPE_WORDS[kind]}", "value"
            ) from None

    def _dtype(self, cond: Condition, path: str) -> dt.DataType:
        try:
            return self.schema[cond.column]
        except KeyError:
            pass
        names = list(self.schema)
        close = [n for n in names if n.lower() == cond.column.lower()]
        close += [n for n in difflib.get_close_matches(cond.column, names, n=3, cutoff=0.6) if n not in close]
        hint = (
            N_("; did you mean %(names)s?") % {"names": " or ".join(repr(n) for n in close)} if close else ""
        )
        raise Invalid(
            "%(path)s: unknown column %(value)s%(hint)s (columns: %(names)s)",
            params={
                "path": path,
                "value": _short(repr(cond.column)),
                "hint": hint,
                "names": ", ".join(names),
            },
            code="unknown_column",
            field=f"{path}.column",
            details={"column": cond.column, "close_matches": close},
        )

    def _days(
        self, cond: Condition, column: ir.Column, kind: ColumnType, dtype: dt.DataType
    ) -> ir.BooleanValue:
        days = timedelta(days=int(cond.value))  # type: ignore[arg-type]  # rules.py checked: an int
        if kind is ColumnType.DATE:
            today = self.now.date()
            start, end = ibis.literal(today - days, type=dt.date), ibis.literal(today, type=dt.date)
        else:
            start = values.timestamp_literal(self.now - days, dtype)
            end = values.timestamp_literal(self.now, dtype)
        present = column.notnull()
        if cond.operator is Op.IN_LAST_DAYS:
            return present & (column >= start) & (column <= end)
        return present & (column < start)


def _compare(cond: Condition, column: ir.Column, kind: ColumnType, dtype: dt.DataType) -> ir.BooleanValue:
    def lit(value: object) -> ir.Scalar:
        scalar = values.literal(value, kind, dtype)
        return scalar.lower() if cond.ignore_case else scalar

    subject = column.lower() if cond.ignore_case else column
    present, missing = column.notnull(), column.isnull()
    op, value = cond.operator, cond.value
    if op is Op.IN or op is Op.NOT_IN:
        options = [lit(v) for v in _listed(value)]
        return present & subject.isin(options) if op is Op.IN else missing | subject.notin(options)
    if op is Op.BETWEEN:
        low, high = _listed(value)
        _check_order(low, high, kind)
        return present & subject.between(lit(low), lit(high))
    operand = lit(value)
    match op:
        case Op.EQ:
            return present & (subject == operand)
        case Op.NE:
            return missing | (subject != operand)
        case Op.LT:
            return present & (subject < operand)
        case Op.LE:
            return present & (subject <= operand)
        case Op.GT:
            return present & (subject > operand)
        case Op.GE:
            return present & (subject >= operand)
        case Op.CONTAINS:
            return present & subject.contains(operand)
        case Op.STARTS_WITH:
            return present & subject.startswith(operand)
        case Op.ENDS_WITH:
            return present & subject.endswith(operand)
    raise AssertionError(f"unhandled operator {op}")  # every operator is handled above


def _listed(value: object) -> list[object]:
    if not isinstance(value, list):  # rules.py lets only lists through for these operators
        raise AssertionError(f"expected a list, got {value!r}")
    return value


def _check_order(low: object, high: object, kind: ColumnType) -> None:
    first, last = values.python_value(low, kind), values.python_value(high, kind)
    if first is not None and last is not None and first > last:  # type: ignore[operator]  # same kind
        raise values.Mismatch(f"between needs low ≤ high, got {low!r} > {high!r}")


def _emptiness(column: ir.Column, kind: ColumnType, *, empty: bool) -> ir.BooleanValue:
    missing = column.isnull()
    if kind is ColumnType.STRING:
        missing = missing | (column == ibis.literal("", type=dt.string))
    return missing if empty else ~missing


def _invalid(cond: Condition, path: str, reason: str, part: str) -> Invalid:
    return Invalid(
        "%(path)s (%(value)s): %(reason)s",
        params={"path": path, "value": _short(cond.describe(), 120), "reason": reason},
        code="invalid_rule",
        field=f"{path}.{part}",
        details={"condition": cond.model_dump(mode="json")},
    )


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
