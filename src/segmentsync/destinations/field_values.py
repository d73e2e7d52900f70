"""Fitting a member's value into a platform's custom field, before it is sent.

``fit`` checks a value against the field's type (number, date, options) and trims it to the
platform's length limit. It returns the text value(s) to send and, when the value had to be
changed or left out, a note for the row's outcome message. Rules (the same for both platforms):

* ``None`` → no values: the destination clears the field (Campaign Monitor) or leaves it alone.
* text → ``str(value)``, trimmed to ``max_chars`` (noted).
* number → a finite number (booleans are not numbers), else left out (noted).
* date → ``YYYY-MM-DD``, ``YYYY/MM/DD`` or an ISO date-time (date part), within the platform's
  range, sent in ``date_format``; else left out (noted).
* select one / other fields with options → one of the options (case-insensitive, sent as the
  option is spelled), else left out (noted); select many → each value that is an option.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from segmentsync.destinations.fields import FieldInfo, FieldType

Value = str | int | float | bool | list[str] | None
SHOW_CHARS = 40
_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[T ].*)?$")


@dataclass(frozen=True, slots=True)
class Fitted:
    values: tuple[str, ...] | None  # None: leave the field out; (): clear it
    note: str | None = None


def fit(
    value: Value,
    field: FieldInfo,
    *,
    max_chars: int,
    date_format: str = "%Y-%m-%d",
    date_range: tuple[date, date] = (date(1, 1, 1), date(9999, 12, 31)),
) -> Fitted:
    if value is None:
        return Fitted(())
    match field.type:
        case FieldType.NUMBER:
            return _number(value, field)
        case FieldType.DATE:
            return _date(value, field, date_format, date_range)
        case FieldType.SELECT_MANY:
            return _options(value if isinstance(value, list) else [text_of(value)], field, many=True)
        case FieldType.SELECT_ONE:
            return _options([text_of(value)], field, many=False)
        case _ if field.options:
            return _options([text_of(value)], field, many=False)
        case _:
            return _trimmed(text_of(value), field, max_chars)


def text_of(value: Value) -> str:
    """A value as text: lists joined by ", ", booleans as true/false (``templates.text_sql``)."""
    if isinstance(value, list):
        return ", ".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _trimmed(text: str, field: FieldInfo, max_chars: int) -> Fitted:
    if len(text) <= max_chars:
        return Fitted((text,))
    return Fitted((text[:max_chars],), f"{field.name}: trimmed to {max_chars} characters")


def _number(value: Value, field: FieldInfo) -> Fitted:
    left_out = Fitted(None, f"{field.name}: {_show(value)} is not a number; left out")
    if isinstance(value, bool | list):
        return left_out
    if isinstance(value, int):
        return Fitted((str(value),))
    if isinstance(value, float):
        return Fitted((repr(value),)) if math.isfinite(value) else left_out
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return left_out
    return Fitted((str(value).strip(),)) if number.is_finite() else left_out


def _date(value: Value, field: FieldInfo, date_format: str, date_range: tuple[date, date]) -> Fitted:
    text = text_of(value).strip()
    match = _DATE.match(text)
    try:
        day = date(*(int(part) for part in match.groups())) if match else None
    except ValueError:
        day = None
    if day is None:
        return Fitted(None, f"{field.name}: {_show(value)} is not a date (YYYY-MM-DD); left out")
    if not date_range[0] <= day <= date_range[1]:
        low, high = (d.isoformat() for d in date_range)
        return Fitted(None, f"{field.name}: {day.isoformat()} is outside {low}..{high}; left out")
    return Fitted((datetime(day.year, day.month, day.day).strftime(date_format),))


def _options(values: Sequence[str], field: FieldInfo, *, many: bool) -> Fitted:
    by_folded = {option.casefold(): option for option in field.options}
    chosen = [by_folded[v.strip().casefold()] for v in values if v.strip().casefold() in by_folded]
    unknown = [v for v in values if v.strip().casefold() not in by_folded]
    if not unknown:
        return Fitted(tuple(chosen))
    note = f"{field.name}: {', '.join(_show(v) for v in unknown)} not among the options; left out"
    return Fitted(tuple(chosen) if many and chosen else None, note)


def _show(value: Value) -> str:
    """A value quoted for a note, cut at 40 characters (``templates.show_sql`` says the same)."""
    text = text_of(value)
    return f"'{text}'" if len(text) <= SHOW_CHARS else f"'{text[: SHOW_CHARS - 3]}...'"
