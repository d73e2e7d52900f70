"""The few column types segments reason about, mapped from the engine's (Ibis) data types.

The rule builder, the email-column picker and rule validation only need to know whether a column
holds text, whole numbers, numbers, yes/no, dates or timestamps; everything else is ``other``.
"""

from __future__ import annotations

from enum import StrEnum

import ibis.expr.datatypes as dt


class ColumnType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"  # floating point and decimal
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"
    OTHER = "other"  # arrays, structs, JSON, binary … (only "is empty" / "is not empty")


def column_type(dtype: dt.DataType) -> ColumnType:
    """The segment-level type of an Ibis data type."""
    if dtype.is_string():
        return ColumnType.STRING
    if dtype.is_integer():
        return ColumnType.INTEGER
    if dtype.is_floating() or dtype.is_decimal():
        return ColumnType.FLOAT
    if dtype.is_boolean():
        return ColumnType.BOOLEAN
    if dtype.is_date():
        return ColumnType.DATE
    if dtype.is_timestamp():
        return ColumnType.TIMESTAMP
    return ColumnType.OTHER
