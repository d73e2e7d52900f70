"""A destination's import rows, rendered inside the snapshot's DuckDB (the run engine's fast path).

A run renders every member's row once, in SQL, while it takes its snapshot: sending is then only
joining ready JSON rows into a request body. ``fit_sql`` is the SQL twin of
``field_values.fit`` and the row builders are the twins of ``campaign_monitor_rows.prepare`` and
``constant_contact_rows.prepare``; ``tests/destinations/test_templates.py`` checks that both
give the same rows and notes for the same values.

Everything is an expression over the columns of the snapshot (``email``, ``consent`` and one
value column per mapped field); names coming from the platform or the user are always bound as
parameters, never written into the SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from segmentsync.destinations.field_values import SHOW_CHARS
from segmentsync.destinations.fields import FieldInfo, FieldType

Kind = Literal["text", "integer", "float", "decimal", "boolean", "date", "timestamp", "list"]
NUMERIC_KINDS = ("integer", "float", "decimal")


@dataclass(frozen=True, slots=True)
class Sql:
    """An SQL expression and the parameters of its ``?`` marks, in order."""

    text: str
    params: tuple[Any, ...] = ()

    def __add__(self, other: Sql) -> Sql:
        return Sql(self.text + other.text, self.params + other.params)


def sql(text: str, *params: Any) -> Sql:
    return Sql(text, params)


NULL = sql("NULL")


def join(parts: Sequence[Sql], separator: str) -> Sql:
    out = sql("")
    for index, part in enumerate(parts):
        out = out + (sql(separator) + part if index else part)
    return out


def call(function: str, *args: Sql) -> Sql:
    return sql(f"{function}(") + join(args, ", ") + sql(")")


@dataclass(frozen=True, slots=True)
class Value:
    """One mapped value: its SQL expression in the snapshot, and what kind of value it holds."""

    sql: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class RowTemplate:
    """What the snapshot computes per member for a destination."""

    row: Sql  # the platform's own JSON for the row (VARCHAR)
    note: Sql  # what fitting changed, or NULL
    reject: Sql = field(default_factory=lambda: NULL)  # why the platform would refuse it (not sent), or NULL


@dataclass(frozen=True, slots=True)
class Fit:
    values: Sql  # VARCHAR[]: NULL leaves the field out, [] clears it
    note: Sql  # VARCHAR or NULL


def text_sql(value: Value) -> Sql:
    """``field_values._text`` in SQL: lists joined by ", ", booleans as true/false."""
    if value.kind == "list":
        return sql(f"array_to_string({value.sql}, ', ')")
    if value.kind == "boolean":
        return sql(f"CASE WHEN {value.sql} THEN 'true' WHEN NOT {value.sql} THEN 'false' END")
    return sql(f"CAST({value.sql} AS VARCHAR)")


def show_sql(text: Sql) -> Sql:
    """``field_values._show``: quoted, cut at 40 characters."""
    cut = SHOW_CHARS - 3
    return (
        sql("'''' || CASE WHEN length(")
        + text
        + sql(f") <= {SHOW_CHARS} THEN ")
        + text
        + sql(" ELSE left(")
        + text
        + sql(f", {cut}) || '...' END || ''''")
    )


def note_sql(name: str, middle: Sql, end: str) -> Sql:
    return sql("? || ': ' || ", name) + middle + sql(" || ?", end)


def fit_sql(
    value: Value,
    info: FieldInfo,
    *,
    max_chars: int,
    date_format: str = "%Y-%m-%d",
    date_range: tuple[date, date] = (date(1, 1, 1), date(9999, 12, 31)),
) -> Fit:
    """``field_values.fit`` as SQL over one value."""
    if info.type is FieldType.NUMBER:
        fitted = _number(value, info)
    elif info.type is FieldType.DATE:
        fitted = _date(value, info, date_format, date_range)
    elif info.type is FieldType.SELECT_MANY:
        fitted = _options(value, info, many=True)
    elif info.type is FieldType.SELECT_ONE or info.options:
        fitted = _options(value, info, many=False)
    else:
        fitted = _trimmed(text_sql(value), info.name, max_chars)
    null = sql(f"{value.sql} IS NULL")
    return Fit(
        values=sql("CASE WHEN ") + null + sql(" THEN []::VARCHAR[] ELSE ") + fitted.values + sql(" END"),
        note=sql("CASE WHEN ") + null + sql(" THEN NULL ELSE ") + fitted.note + sql(" END"),
    )


def _trimmed(text: Sql, name: str, max_chars: int) -> Fit:
    return Fit(
        values=sql("[left(") + text + sql(f", {max_chars})]"),
        note=sql("CASE WHEN length(")
        + text
        + sql(f") > {max_chars} THEN ")
        + note_sql(name, sql("''"), f"trimmed to {max_chars} characters")
        + sql(" END"),
    )


def _number(value: Value, info: FieldInfo) -> Fit:
    left_out = note_sql(info.name, show_sql(text_sql(value)), " is not a number; left out")
    if value.kind in ("integer", "decimal"):
        return Fit(values=sql(f"[CAST({value.sql} AS VARCHAR)]"), note=NULL)
    if value.kind == "float":
        finite = sql(f"isfinite({value.sql})")
    elif value.kind == "text":
        finite = sql(f"coalesce(isfinite(TRY_CAST(trim({value.sql}) AS DOUBLE)), false)")
    else:  # booleans and lists are no numbers
        return Fit(values=NULL, note=left_out)
    shown = sql(f"[CAST({value.sql} AS VARCHAR)]" if value.kind == "float" else f"[trim({value.sql})]")
    return Fit(
        values=sql("CASE WHEN ") + finite + sql(" THEN ") + shown + sql(" END"),
        note=sql("CASE WHEN ") + finite + sql(" THEN NULL ELSE ") + left_out + sql(" END"),
    )


def _date(value: Value, info: FieldInfo, date_format: str, date_range: tuple[date, date]) -> Fit:
    if value.kind in ("date", "timestamp"):
        day = sql(f"CAST({value.sql} AS DATE)")
    else:
        text = sql("trim(") + text_sql(value) + sql(")")
        pattern = r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[T ].*)?$"
        parts = [
            sql("CAST(regexp_extract(") + text + sql(f", ?, {i}) AS INTEGER)", pattern) for i in (1, 2, 3)
        ]
        day = (
            sql("CASE WHEN regexp_matches(")
            + text
            + sql(", ?) THEN TRY_CAST(printf('%04d-%02d-%02d', ", pattern)
            + join(parts, ", ")
            + sql(") AS DATE) END")
        )
    low, high = date_range
    inside = sql("(") + day + sql(" BETWEEN ? AND ?)", low, high)
    not_a_date = note_sql(info.name, show_sql(text_sql(value)), " is not a date (YYYY-MM-DD); left out")
    outside = note_sql(
        info.name,
        sql("strftime(") + day + sql(", '%Y-%m-%d')"),
        f" is outside {low.isoformat()}..{high.isoformat()}; left out",
    )
    return Fit(
        values=sql("CASE WHEN ") + inside + sql(" THEN [strftime(") + day + sql(", ?)] END", date_format),
        note=sql("CASE WHEN ")
        + day
        + sql(" IS NULL THEN ")
        + not_a_date
        + sql(" WHEN NOT ")
        + inside
        + sql(" THEN ")
        + outside
        + sql(" END"),
    )


def _options(value: Value, info: FieldInfo, *, many: bool) -> Fit:
    """One of the options (case-insensitive, spelled as the option is); many: each value."""
    items = sql(f"{value.sql}") if many and value.kind == "list" else sql("[") + text_sql(value) + sql("]")
    options = list(info.options)
    folded = [option.casefold() for option in options]
    pick = sql("list_position(?, lower(trim(x)))", folded)
    chosen = (
        sql("list_transform(list_filter(")
        + items
        + sql(", x -> ")
        + pick
        + sql(" > 0), x -> list_extract(?, ", options)
        + pick
        + sql("))")
    )
    unknown = sql("list_filter(") + items + sql(", x -> coalesce(") + pick + sql(", 0) = 0)")
    shown = (
        sql("array_to_string(list_transform(")
        + unknown
        + sql(", x -> ")
        + show_sql(sql("x"))
        + sql("), ', ')")
    )
    note = note_sql(info.name, shown, " not among the options; left out")
    has_unknown = sql("len(") + unknown + sql(") > 0")
    kept = sql("CASE WHEN len(") + chosen + sql(") > 0 THEN ") + chosen + sql(" END") if many else NULL
    return Fit(
        values=sql("CASE WHEN ") + has_unknown + sql(" THEN ") + kept + sql(" ELSE ") + chosen + sql(" END"),
        note=sql("CASE WHEN ") + has_unknown + sql(" THEN ") + note + sql(" END"),
    )


def notes_sql(notes: Sequence[Sql]) -> Sql:
    """The row's notes joined by "; ", or NULL when there are none."""
    if not notes:
        return NULL
    return sql("nullif(concat_ws('; ', ") + join(list(notes), ", ") + sql("), '')")


def json_text(value: Sql) -> Sql:
    """A VARCHAR as a JSON string literal."""
    return sql("to_json(CAST(") + value + sql(" AS VARCHAR))")
