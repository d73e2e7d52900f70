"""Property: on random rows, the compiled filter (run by DuckDB) selects exactly the rows a plain
Python evaluation of the rule selects — NULLs, negation, boundaries and all."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentsync.segments.compile import compile_filter
from segmentsync.segments.rules import Condition, Group, Operator, parse

from .dataset import NOW

TODAY = NOW.date()
TEXT = st.text(alphabet="aAbBéÉ%_'\" \\", max_size=3)
INTS = st.integers(-3, 3)
FLOATS = st.sampled_from([-1.5, 0.0, 0.5, 2.0, 100.25])
DATES = st.integers(-40, 5).map(lambda n: TODAY + timedelta(days=n))
STAMPS = st.integers(-40 * 24, 5 * 24).map(lambda h: NOW + timedelta(hours=h))
DAYS = st.integers(0, 30)
COLUMNS: dict[str, tuple[str, st.SearchStrategy[Any], pa.DataType]] = {
    "s": ("text", TEXT, pa.string()),
    "i": ("number", INTS, pa.int64()),
    "f": ("number", FLOATS, pa.float64()),
    "b": ("boolean", st.booleans(), pa.bool_()),
    "d": ("date", DATES, pa.date32()),
    "ts": ("date", STAMPS, pa.timestamp("us", tz="UTC")),
}
ORDERED = ["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "between", "is_empty", "is_not_empty"]
OPERATORS = {
    "text": [*ORDERED, "contains", "starts_with", "ends_with"],
    "number": ORDERED,
    "boolean": ["eq", "ne", "in", "not_in", "is_empty", "is_not_empty"],
    "date": [*ORDERED, "in_last_days", "before_days_ago"],
}


def as_json(value: Any) -> Any:
    """A value as a rule would hold it (dates and times as ISO text)."""
    return value.isoformat() if isinstance(value, date | datetime) else value


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    column = draw(st.sampled_from(list(COLUMNS)))
    kind, values, _ = COLUMNS[column]
    operator = draw(st.sampled_from(OPERATORS[kind]))
    extra: dict[str, Any] = {}
    if operator in ("is_empty", "is_not_empty"):
        value: Any = None
    elif operator in ("in_last_days", "before_days_ago"):
        value = draw(DAYS)
    elif operator in ("in", "not_in"):
        value = [as_json(v) for v in draw(st.lists(values, min_size=1, max_size=3))]
    elif operator == "between":
        value = [as_json(v) for v in sorted(draw(st.lists(values, min_size=2, max_size=2)))]
    else:
        value = as_json(draw(values))
    if kind == "text" and operator not in ("is_empty", "is_not_empty"):
        extra["ignore_case"] = draw(st.booleans())
    return {"column": column, "operator": operator, "value": value, **extra}


RULES = st.recursive(
    conditions(),
    lambda items: st.fixed_dictionaries(
        {"op": st.sampled_from(["and", "or"]), "negate": st.booleans(), "items": st.lists(items, max_size=3)}
    ),
    max_leaves=6,
).map(lambda tree: tree if "items" in tree else {"items": [tree]})
ROWS = st.lists(
    st.fixed_dictionaries({name: st.none() | values for name, (_, values, _) in COLUMNS.items()}),
    max_size=12,
)


def python_holds(item: Condition | Group, row: dict[str, Any]) -> bool:
    if isinstance(item, Group):
        results = [python_holds(sub, row) for sub in item.items]
        answer = all(results) if item.op == "and" else any(results)
        return not answer if item.negate else answer
    value, op, target = row[item.column], item.operator, item.value
    empty = value is None or value == ""
    if op is Operator.IS_EMPTY or op is Operator.IS_NOT_EMPTY:
        return empty if op is Operator.IS_EMPTY else not empty
    if value is None:
        return op in (Operator.NE, Operator.NOT_IN)
    if op is Operator.IN_LAST_DAYS or op is Operator.BEFORE_DAYS_AGO:
        end = TODAY if isinstance(value, date) and not isinstance(value, datetime) else NOW
        start = end - timedelta(days=int(target))  # type: ignore[arg-type]
        return start <= value <= end if op is Operator.IN_LAST_DAYS else value < start
    fold = (lambda v: v.lower()) if item.ignore_case else (lambda v: v)
    value = fold(value)
    typed = [fold(typed_value(item.column, t)) for t in (target if isinstance(target, list) else [target])]
    return compare(op, value, typed)


def compare(op: Operator, value: Any, typed: list[Any]) -> bool:
    match op:
        case Operator.EQ:
            return bool(value == typed[0])
        case Operator.NE:
            return bool(value != typed[0])
        case Operator.LT:
            return bool(value < typed[0])
        case Operator.LE:
            return bool(value <= typed[0])
        case Operator.GT:
            return bool(value > typed[0])
        case Operator.GE:
            return bool(value >= typed[0])
        case Operator.IN:
            return value in typed
        case Operator.NOT_IN:
            return value not in typed
        case Operator.BETWEEN:
            return bool(typed[0] <= value <= typed[1])
        case Operator.CONTAINS:
            return bool(typed[0] in value)
        case Operator.STARTS_WITH:
            return bool(value.startswith(typed[0]))
        case Operator.ENDS_WITH:
            return bool(value.endswith(typed[0]))
    raise AssertionError(op)


def typed_value(column: str, value: Any) -> Any:
    if column == "d":
        return date.fromisoformat(value)
    if column == "ts":
        return datetime.fromisoformat(value).astimezone(UTC)
    return value


@pytest.fixture(scope="module")
def duck() -> Any:
    con = ibis.duckdb.connect()
    yield con
    con.disconnect()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rule_data=RULES, rows=ROWS)
def test_compiled_filter_agrees_with_python(
    duck: Any, rule_data: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    rule = parse(rule_data)
    data = pa.table(
        {"rid": pa.array(range(len(rows)), pa.int64())}
        | {
            name: pa.array([row[name] for row in rows], arrow_type)
            for name, (_, _, arrow_type) in COLUMNS.items()
        }
    )
    table = ibis.memtable(data)
    selected = duck.to_pyarrow(table.filter(compile_filter(rule, table, now=NOW)).select("rid"))
    expected = [index for index, row in enumerate(rows) if python_holds(rule, row)]
    assert sorted(selected.column("rid").to_pylist()) == expected
