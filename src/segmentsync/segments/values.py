"""Turn a condition's JSON value into a typed Ibis literal for one column, or say why it cannot.

Values reach the engine only as Ibis literals of the column's type (Ibis and sqlglot render and
escape them); nothing here builds SQL text.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from segmentsync.profiles.columns import ColumnType

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
WHOLE = re.compile(r"^\s*[+-]?\d+\s*$")


class Mismatch(ValueError):
    """The value does not fit the column; the message says why, in a user's words."""


def literal(value: object, kind: ColumnType, dtype: dt.DataType) -> ir.Scalar:
    """``value`` as an Ibis literal fitting a column of type ``dtype``."""
    match kind:
        case ColumnType.STRING:
            return ibis.literal(_text(value), type=dt.string)
        case ColumnType.INTEGER:
            return ibis.literal(_whole(value), type=dt.int64)
        case ColumnType.FLOAT:
            number = _number(value)
            if dtype.is_decimal() and _fits(number, dtype):
                return ibis.literal(number, type=dtype)
            return ibis.literal(float(number), type=dt.float64)
        case ColumnType.BOOLEAN:
            return ibis.literal(_boolean(value), type=dt.boolean)
        case ColumnType.DATE:
            return ibis.literal(_date(value), type=dt.date)
        case ColumnType.TIMESTAMP:
            return timestamp_literal(_instant(value), dtype)
    raise Mismatch("this column's type cannot be compared with values")


def _fits(number: Decimal, dtype: dt.DataType) -> bool:
    """Whether a decimal column's own type holds ``number`` exactly (else compare as a float)."""
    precision, scale = getattr(dtype, "precision", None), getattr(dtype, "scale", None)
    if precision is None or scale is None:
        return True  # unconstrained NUMERIC
    try:
        exact = number.quantize(Decimal(1).scaleb(-scale)) == number
    except InvalidOperation:
        return False
    return exact and len(str(abs(int(number)))) <= precision - scale


def timestamp_literal(instant: datetime, dtype: dt.DataType) -> ir.Scalar:
    """An instant (aware) as a literal for a timestamp column.

    Columns without a time zone are read as UTC (the engines here run their sessions in UTC).
    """
    zone_name = getattr(dtype, "timezone", None)
    if zone_name is None:
        return ibis.literal(instant.astimezone(UTC).replace(tzinfo=None), type=dtype)
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return ibis.literal(instant.astimezone(zone), type=dtype)


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a number for a text column (zip codes, ids) is unambiguous
    raise Mismatch(f"{_show(value)} is not text")


def _whole(value: object) -> int:
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (isinstance(value, str) and WHOLE.match(value)):
        number = int(value)
    if number is None:
        raise Mismatch(f"{_show(value)} is not a whole number")
    if not INT64_MIN <= number <= INT64_MAX:
        raise Mismatch(f"{_show(value)} is out of range for a 64-bit integer")
    return number


def _number(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Mismatch(f"{_show(value)} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise Mismatch(f"{_show(value)} is not a finite number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise Mismatch(f"{_show(value)} is not a number") from None
    if not number.is_finite():
        raise Mismatch(f"{_show(value)} is not a finite number")
    return number


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise Mismatch(f"{_show(value)} is not true or false")


def _date(value: object) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise Mismatch(f"{_show(value)} is not a date (write it as YYYY-MM-DD)")


def _instant(value: object) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise Mismatch(
        f"{_show(value)} is not a date and time (write it as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, "
        f"UTC unless it has an offset)"
    )


def python_value(value: object, kind: ColumnType) -> object:
    """The comparable Python value of a literal (to check that ``between`` has low ≤ high)."""
    match kind:
        case ColumnType.INTEGER:
            return _whole(value)
        case ColumnType.FLOAT:
            return _number(value)
        case ColumnType.DATE:
            return _date(value)
        case ColumnType.TIMESTAMP:
            return _instant(value)
    return None


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
