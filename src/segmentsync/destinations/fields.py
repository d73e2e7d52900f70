"""A platform's custom field, as the destinations describe it (a leaf module: base, values and
templates all use it)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FieldType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    SELECT_ONE = "select_one"
    SELECT_MANY = "select_many"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class FieldInfo:
    key: str  # what Member.fields uses: CM "[City]", CC "cf:city"
    name: str
    type: FieldType
    options: tuple[str, ...] = ()
