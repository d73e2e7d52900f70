"""One account: its contacts, lists, custom fields and activity queue, and the rules tying them."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from segmentsync.sandbox.constant_contact.activities import ActivityQueue
from segmentsync.sandbox.constant_contact.errors import bad_request, conflict
from segmentsync.sandbox.constant_contact.store import (
    DELETED,
    MAX_CUSTOM_FIELDS,
    MAX_LISTS,
    MAX_LISTS_PER_CONTACT,
    OPT_OUT_BY_CONTACT,
    UNSUBSCRIBED,
    ContactList,
    ContactTable,
    CustomField,
    bits,
    is_active,
    new_id,
)

CUSTOM_FIELD_TYPES = frozenset(
    {
        "string",
        "date",
        "number",
        "currency",
        "text_area",
        "boolean",
        "single_select",
        "multi_select",
        "datetime",
    }
)


@dataclass(slots=True)
class Owner:
    """What ``GET /v3/account/summary`` tells about the account (``None``: the default)."""

    organization_name: str | None = None
    contact_email: str | None = None
    first_name: str = "Sandbox"
    last_name: str = "Owner"


class Account:
    def __init__(self, name: str, owner: Owner | None = None) -> None:
        self.account_id = new_id()
        self.name = name
        owner = owner or Owner()
        # the encoded account id the platform shows beside the UUID (14 lower-case characters)
        self.encoded_account_id = hashlib.sha256(self.account_id.encode()).hexdigest()[:14]
        self.organization_name = name if owner.organization_name is None else owner.organization_name
        self.contact_email = (
            f"owner-{self.encoded_account_id}@example.com"
            if owner.contact_email is None
            else owner.contact_email
        )
        self.first_name = owner.first_name
        self.last_name = owner.last_name
        self.created_at = time.time()
        self.contacts = ContactTable()
        self.lists: dict[str, ContactList] = {}  # creation order, deleted ones included
        self.slots: list[ContactList | None] = []  # membership bit -> list
        self.custom_fields: dict[str, CustomField] = {}
        self.fields_by_name: dict[str, CustomField] = {}
        self.field_slots: list[CustomField] = []
        self.activities = ActivityQueue()
        # Times each address was imported into a list, for the lists a test asked to count
        # (``POST /_sandbox/lists/{id}/received``): list id -> address -> times.
        self.received: dict[str, dict[str, int]] = {}

    # lists -------------------------------------------------------------------------------
    def live_lists(self) -> Iterator[ContactList]:
        return (lst for lst in self.lists.values() if lst.deleted_at is None)

    def live_list(self, list_id: str) -> ContactList | None:
        lst = self.lists.get(list_id)
        return lst if lst is not None and lst.deleted_at is None else None

    def check_list_name(self, name: str, *, exclude: ContactList | None = None) -> None:
        folded = name.casefold()
        for lst in self.live_lists():
            if lst is not exclude and lst.name.casefold() == folded:
                raise conflict(f"The list name '{name}' is already in use.")

    def create_list(self, name: str, description: str | None, favorite: bool) -> ContactList:
        self.check_list_name(name)
        if sum(1 for _ in self.live_lists()) >= MAX_LISTS:
            raise bad_request(f"An account can have at most {MAX_LISTS} contact lists.")
        now = time.time()
        slot = next((i for i, lst in enumerate(self.slots) if lst is None), len(self.slots))
        lst = ContactList(new_id(), name, slot, now, now, description, favorite)
        if slot == len(self.slots):
            self.slots.append(lst)
        else:
            self.slots[slot] = lst
        self.lists[lst.list_id] = lst
        return lst

    def list_mask(self, list_ids: list[str]) -> int:
        mask = 0
        for list_id in list_ids:
            lst = self.live_list(list_id)
            if lst is not None:
                mask |= 1 << lst.slot
        return mask

    def list_ids_of(self, mask: int) -> list[str]:
        lists = (self.slots[slot] for slot in bits(mask))
        return [lst.list_id for lst in lists if lst is not None and lst.deleted_at is None]

    def strip_slot(self, lst: ContactList) -> int:
        """Take every contact off a deleted list and free its slot; returns how many were on it."""
        bit = 1 << lst.slot
        memberships = self.contacts.lists
        removed = 0
        for i, mask in enumerate(memberships):
            if mask & bit:
                memberships[i] = mask ^ bit
                removed += 1
        self.slots[lst.slot] = None
        lst.members = lst.active_members = 0
        return removed

    # memberships ---------------------------------------------------------------------------
    def add_memberships(self, i: int, mask: int) -> bool:
        """Put contact ``i`` on the lists of ``mask``; False if it would pass 50 lists."""
        current = self.contacts.lists[i]
        new = mask & ~current
        if not new:
            return True
        if (current | new).bit_count() > MAX_LISTS_PER_CONTACT:
            return False
        self.contacts.lists[i] = current | new
        active = is_active(self.contacts.permission[i])
        if not new & (new - 1):  # one list, the usual case
            lst = self.slots[new.bit_length() - 1]
            if lst is not None:
                lst.members += 1
                lst.active_members += active
            return True
        for slot in bits(new):
            lst = self.slots[slot]
            if lst is not None:
                lst.members += 1
                lst.active_members += active
        return True

    def remove_memberships(self, i: int, mask: int) -> int:
        current = self.contacts.lists[i]
        gone = current & mask
        if gone:
            self.contacts.lists[i] = current & ~gone
            active = is_active(self.contacts.permission[i])
            for slot in bits(gone):
                lst = self.slots[slot]
                if lst is not None:
                    lst.members -= 1
                    lst.active_members -= active
        return gone.bit_count()

    # contact state -------------------------------------------------------------------------
    def set_permission(self, i: int, permission: int) -> None:
        contacts = self.contacts
        delta = is_active(permission) - is_active(contacts.permission[i])
        contacts.permission[i] = permission
        if delta:
            for slot in bits(contacts.lists[i]):
                lst = self.slots[slot]
                if lst is not None:
                    lst.active_members += delta

    def unsubscribe(self, i: int, *, by_contact: bool, reason: str | None, now: float) -> None:
        self.set_permission(i, UNSUBSCRIBED)
        contacts = self.contacts
        flags = contacts.flags[i] & ~OPT_OUT_BY_CONTACT
        contacts.flags[i] = flags | (OPT_OUT_BY_CONTACT if by_contact else 0)
        extra = contacts.details_of(i)
        extra["opt_out_date"] = now
        extra["opt_out_reason"] = reason
        contacts.updated[i] = now

    def delete_contact(self, i: int, now: float) -> None:
        contacts = self.contacts
        if contacts.flags[i] & DELETED:
            return
        self.remove_memberships(i, contacts.lists[i])
        contacts.flags[i] |= DELETED
        contacts.details_of(i)["deleted_at"] = now
        contacts.updated[i] = now
        contacts.deleted_count += 1

    def revive(self, i: int) -> None:
        contacts = self.contacts
        if contacts.flags[i] & DELETED:
            contacts.flags[i] &= ~DELETED
            contacts.details_of(i).pop("deleted_at", None)
            contacts.deleted_count -= 1

    # custom fields -------------------------------------------------------------------------
    def create_custom_field(self, label: str, type_: str, extra: dict[str, object]) -> CustomField:
        if type_ not in CUSTOM_FIELD_TYPES:
            raise bad_request(f"type must be one of: {', '.join(sorted(CUSTOM_FIELD_TYPES))}.")
        name = "_".join(label.split(" "))
        if name.casefold() in (f.name.casefold() for f in self.custom_fields.values()):
            raise conflict(f"A custom field named '{name}' already exists.")
        if len(self.custom_fields) >= MAX_CUSTOM_FIELDS:
            raise bad_request(f"An account can have at most {MAX_CUSTOM_FIELDS} custom fields.")
        now = time.time()
        custom_field = CustomField(new_id(), label, name, type_, len(self.field_slots), now, now, dict(extra))
        self.custom_fields[custom_field.custom_field_id] = custom_field
        self.fields_by_name[name] = custom_field
        self.field_slots.append(custom_field)
        return custom_field
