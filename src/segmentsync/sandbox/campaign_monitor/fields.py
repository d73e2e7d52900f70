"""Custom fields: definitions, their keys, and the typed values subscribers hold.

A value that does not fit its field (wrong type, unknown option, a date outside CM's range, text over
250 characters) is skipped and the subscriber is still stored: CM's docs say invalid dates "are
ignored", and its import help says field data that doesn't match is skipped.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable
from datetime import date
from typing import Any, Final

from segmentsync.sandbox.campaign_monitor.countries import COUNTRIES, US_STATES

TEXT: Final = "Text"
NUMBER: Final = "Number"
MULTI_ONE: Final = "MultiSelectOne"
MULTI_MANY: Final = "MultiSelectMany"
DATE: Final = "Date"
COUNTRY: Final = "Country"
US_STATE: Final = "USState"
DATA_TYPES: Final = {
    name.lower(): name for name in (TEXT, NUMBER, MULTI_ONE, MULTI_MANY, DATE, COUNTRY, US_STATE)
}
GENERATED_OPTIONS: Final = {COUNTRY: COUNTRIES, US_STATE: US_STATES}

MAX_VALUE_LENGTH: Final = 250
FIRST_DATE: Final = date(1900, 1, 1)
LAST_DATE: Final = date(2076, 6, 6)
_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T][0-9:.]*)?")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_SPACES = re.compile(r"\s+")
_CANONICAL_ITEM: Final = frozenset({"Key", "Value", "Clear"})

Value = str | tuple[str, ...]  # a MultiSelectMany value is the tuple of its selected options


def key_for(name: str) -> str:
    """CM's personalisation tag: "subscription date" -> "[subscriptiondate]"."""
    return "[" + _SPACES.sub("", name).replace("[", "").replace("]", "") + "]"


class CustomField:
    """One field of a list, with the values of every subscriber that has one (by subscriber key)."""

    __slots__ = ("data_type", "key", "name", "option_lookup", "options", "values", "visible")

    def __init__(self, *, name: str, data_type: str, options: Iterable[str], visible: bool) -> None:
        self.name = name
        self.key = key_for(name)
        self.data_type = data_type
        self.visible = visible
        self.values: dict[str, Value] = {}
        self.options: list[str] = []
        self.option_lookup: dict[str, str] = {}
        self.set_options(GENERATED_OPTIONS.get(data_type, options))

    @property
    def many(self) -> bool:
        return self.data_type == MULTI_MANY

    def set_options(self, options: Iterable[str]) -> None:
        self.options = list(dict.fromkeys(options))
        self.option_lookup = {option.lower(): option for option in self.options}

    def rename(self, name: str) -> None:
        self.name = name
        self.key = key_for(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "FieldName": self.name,
            "Key": self.key,
            "DataType": self.data_type,
            "FieldOptions": list(self.options),
            "VisibleInPreferenceCenter": self.visible,
        }

    def coerce(self, raw: object) -> str | None:
        """The stored form of one value, or None when CM would skip it."""
        data_type = self.data_type
        if data_type == TEXT:
            value = _text(raw)
        elif data_type == NUMBER:
            value = _number(raw)
        elif data_type == DATE:
            value = _date(raw)
        else:
            return self._option(raw)
        # one string object per distinct value: cities, ages and dates repeat across millions of subscribers
        return sys.intern(value) if value is not None else None

    def _option(self, raw: object) -> str | None:
        if isinstance(raw, str):
            return self.option_lookup.get(raw.strip().lower())
        return None

    def clear(self, subscriber_key: str, raw: object) -> None:
        """``"Clear": true``: remove the value; for MultiSelectMany only the named option (blank: all)."""
        if self.many and isinstance(raw, str) and raw.strip():
            current = self.values.get(subscriber_key)
            option = self.option_lookup.get(raw.strip().lower())
            if isinstance(current, tuple) and option in current:
                remaining = tuple(value for value in current if value != option)
                if remaining:
                    self.values[subscriber_key] = remaining
                    return
            else:
                return
        self.values.pop(subscriber_key, None)

    def rendered(self, subscriber_key: str) -> list[dict[str, str]]:
        """The subscriber's ``CustomFields`` entries for this field (``Key`` is the field name)."""
        value = self.values.get(subscriber_key)
        if value is None:
            return []
        if isinstance(value, tuple):
            return [{"Key": self.name, "Value": option} for option in value]
        return [{"Key": self.name, "Value": value}]


def _text(raw: object) -> str | None:
    if isinstance(raw, str):
        return raw if raw and len(raw) <= MAX_VALUE_LENGTH else None
    if isinstance(raw, bool | int | float):
        return str(raw)
    return None


def _number(raw: object) -> str | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return None
        return str(int(raw)) if raw.is_integer() else repr(raw)
    if isinstance(raw, str):
        text = raw.strip()
        return text if _NUMBER.fullmatch(text) and len(text) <= MAX_VALUE_LENGTH else None
    return None


def _date(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    match = _DATE.fullmatch(raw.strip())
    if match is None:
        return None
    try:
        value = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None
    if not FIRST_DATE <= value <= LAST_DATE:
        return None
    return value.isoformat()


def lower_keys(item: dict[str, Any]) -> dict[str, Any]:
    """ASP.NET binds JSON property names case-insensitively, and so do we."""
    return {key.lower(): value for key, value in item.items()}


def apply_values(lookup: dict[str, CustomField], subscriber_key: str, items: list[dict[str, Any]]) -> None:
    """Store a subscriber's ``CustomFields`` items (objects: the caller checked the shape).

    Unknown keys and values that don't fit are skipped; fields not mentioned keep their values;
    an empty value without ``Clear`` changes nothing. Repeated MultiSelectMany items are the set
    of selected options, replacing the previous selection.
    """
    selections: dict[CustomField, list[str]] = {}
    for item in items:
        if item.keys() <= _CANONICAL_ITEM:  # the usual spelling: skip lower-casing every item
            key, raw, clear = item.get("Key"), item.get("Value"), item.get("Clear")
        else:
            lowered = lower_keys(item)
            key, raw, clear = lowered.get("key"), lowered.get("value"), lowered.get("clear")
        field = lookup.get(key.lower()) if isinstance(key, str) else None
        if field is None:
            continue
        if clear is True or clear in ("true", "True"):
            field.clear(subscriber_key, raw)
            continue
        value = field.coerce(raw)
        if value is None:
            continue
        if field.many:
            selections.setdefault(field, []).append(value)
        else:
            field.values[subscriber_key] = value
    for field, chosen in selections.items():
        field.values[subscriber_key] = tuple(dict.fromkeys(chosen))
