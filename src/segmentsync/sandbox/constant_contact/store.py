"""In-memory data of one Constant Contact account: contacts, lists, custom fields.

Contacts are stored column-wise (parallel lists and byte arrays indexed by a contact number) so
that millions fit in memory: no object per contact, repeated names interned, ``contact_id``
derived from the contact number instead of kept in a second index. List memberships are a bit
mask per contact (one bit per list slot); member counts are kept per list as they change.
"""

from __future__ import annotations

import random
import re
import uuid
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

PERMISSIONS = ("implicit", "explicit", "not_set", "pending_confirmation", "temp_hold", "unsubscribed")
IMPLICIT, EXPLICIT, NOT_SET, PENDING, TEMP_HOLD, UNSUBSCRIBED = range(6)
PERMISSION_CODES = {name: code for code, name in enumerate(PERMISSIONS)}

# contact flag bits
DELETED = 1
CREATED_BY_CONTACT = 2
OPT_IN_BY_CONTACT = 4
OPT_OUT_BY_CONTACT = 8

MAX_LISTS_PER_CONTACT = 50
MAX_FIELDS_PER_CONTACT = 25
MAX_LISTS = 1_000
MAX_CUSTOM_FIELDS = 100
MAX_SHARED_NAMES = 200_000

_rng = random.SystemRandom()
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def new_id() -> str:
    """A version-1 style UUID like the platform's (``…-11ef-…-fa163e…``)."""
    return str(uuid.uuid1(node=0xFA163E000000 | _rng.getrandbits(24), clock_seq=_rng.getrandbits(14)))


def is_uuid(value: object) -> bool:
    """Whether ``value`` is a UUID string (8-4-4-4-12 hex digits), as every id of the API is."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def is_active(permission: int) -> bool:
    return permission <= EXPLICIT


def bits(mask: int) -> Iterator[int]:
    """Slot numbers of the set bits, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


@dataclass(slots=True)
class ContactList:
    list_id: str
    name: str
    slot: int
    created_at: float
    updated_at: float
    description: str | None = None
    favorite: bool = False
    deleted_at: float | None = None
    members: int = 0
    active_members: int = 0


@dataclass(slots=True)
class CustomField:
    custom_field_id: str
    label: str
    name: str
    type: str
    slot: int
    created_at: float
    updated_at: float
    extra: dict[str, Any] = field(default_factory=dict)  # metadata, choices as given


class ContactTable:
    """Column-wise contacts; a contact is its number ``i``."""

    def __init__(self) -> None:
        self.id_base = _rng.getrandbits(32)
        node = f"fa163e{_rng.getrandbits(24):06x}"
        self.id_suffix = f"-{_rng.getrandbits(16):04x}-11ef-{0x8000 | _rng.getrandbits(14):04x}-{node}"
        self.emails: list[str] = []
        self.first: list[str | None] = []
        self.last: list[str | None] = []
        self.permission = bytearray()
        self.flags = bytearray()
        self.created = array("d")
        self.updated = array("d")
        self.lists: list[int] = []
        self.field_columns: list[list[str | None]] = []  # per custom field slot; grown on first use
        self.details: list[dict[str, Any] | None] = []  # rarely used properties
        self.by_email: dict[str, int] = {}
        self.deleted_count = 0
        self._names: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.emails)

    def contact_id(self, i: int) -> str:
        return f"{(self.id_base + i) & 0xFFFFFFFF:08x}{self.id_suffix}"

    def index_of(self, contact_id: str) -> int | None:
        if len(contact_id) != 36 or not contact_id.endswith(self.id_suffix):
            return None
        try:
            i = (int(contact_id[:8], 16) - self.id_base) & 0xFFFFFFFF
        except ValueError:
            return None
        return i if i < len(self.emails) else None

    def name(self, value: str) -> str:
        """One shared string per distinct value (names and custom field values repeat a lot)."""
        shared = self._names.get(value)
        if shared is not None:
            return shared
        if len(self._names) < MAX_SHARED_NAMES:  # unique values would only cost more
            self._names[value] = value
        return value

    def append(self, email: str, permission: int, flags: int, now: float) -> int:
        i = len(self.emails)
        self.emails.append(email)
        self.first.append(None)
        self.last.append(None)
        self.permission.append(permission)
        self.flags.append(flags)
        self.created.append(now)
        self.updated.append(now)
        self.lists.append(0)
        self.details.append(None)
        self.by_email[email] = i
        return i

    def details_of(self, i: int) -> dict[str, Any]:
        details = self.details[i]
        if details is None:
            details = self.details[i] = {}
        return details

    def field_values(self, i: int) -> dict[int, str]:
        """Custom field values of contact ``i`` by field slot."""
        return {
            slot: value
            for slot, column in enumerate(self.field_columns)
            if i < len(column) and (value := column[i]) is not None
        }

    def fields_fit(self, i: int | None, values: dict[int, str], defined: int) -> bool:
        """Whether contact ``i`` (None: a new one) stays within 25 custom fields with ``values``."""
        if defined <= MAX_FIELDS_PER_CONTACT:  # cannot pass the cap: skip the count
            return True
        current = self.field_values(i) if i is not None else {}
        return len(current | values) <= MAX_FIELDS_PER_CONTACT

    def set_fields(self, i: int, values: dict[int, str]) -> None:
        columns = self.field_columns
        for slot, value in values.items():
            while len(columns) <= slot:
                columns.append([])
            column = columns[slot]
            size = len(column)
            if size == i:  # the usual case: a new contact, appended
                column.append(self.name(value))
                continue
            if size < i:
                column.extend([None] * (i - size))
                column.append(None)
            column[i] = self.name(value)

    def set_profile(self, i: int, first: str | None, last: str | None, fields: dict[int, str]) -> None:
        """Names and custom field values given (None or empty: keep what is stored)."""
        if first is not None:
            self.first[i] = self.name(first)
        if last is not None:
            self.last[i] = self.name(last)
        if fields:
            self.set_fields(i, fields)

    def status_of(self, i: int) -> str:
        return "deleted" if self.flags[i] & DELETED else PERMISSIONS[self.permission[i]]
