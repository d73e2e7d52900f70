"""JSON shapes of contacts, lists and custom fields, as the platform answers them."""

from __future__ import annotations

from typing import Any

from segmentsync.sandbox.constant_contact.account import Account
from segmentsync.sandbox.constant_contact.store import (
    CREATED_BY_CONTACT,
    DELETED,
    OPT_IN_BY_CONTACT,
    OPT_OUT_BY_CONTACT,
    PENDING,
    PERMISSIONS,
    UNSUBSCRIBED,
    ContactList,
    CustomField,
)
from segmentsync.sandbox.constant_contact.timefmt import day, iso_ms, iso_s

CONTACT_INCLUDES = frozenset(
    {
        "custom_fields",
        "list_memberships",
        "phone_numbers",
        "street_addresses",
        "taggings",
        "notes",
        "sms_channel",
    }
)
_PROFILE = ("job_title", "company_name", "birthday_month", "birthday_day", "anniversary")


def list_json(lst: ContactList, membership: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"list_id": lst.list_id, "name": lst.name}
    if lst.description is not None:
        body["description"] = lst.description
    body["favorite"] = lst.favorite
    body["created_at"] = iso_ms(lst.created_at)
    body["updated_at"] = iso_ms(lst.updated_at)
    if lst.deleted_at is not None:
        body["deleted_at"] = iso_ms(lst.deleted_at)
    if membership is not None:
        body["membership_count"] = lst.active_members if membership == "active" else lst.members
    return body


def custom_field_json(custom_field: CustomField) -> dict[str, Any]:
    body: dict[str, Any] = {
        "custom_field_id": custom_field.custom_field_id,
        "label": custom_field.label,
        "name": custom_field.name,
        "type": custom_field.type,
        **custom_field.extra,
        "created_at": iso_ms(custom_field.created_at),
        "updated_at": iso_ms(custom_field.updated_at),
    }
    if "choices" in body:  # numbered from 1, stamped with the field's id and times
        body["choices"] = [
            {
                "custom_field_id": custom_field.custom_field_id,
                "choice_id": n,
                **choice,
                "created_at": body["created_at"],
                "updated_at": body["updated_at"],
            }
            for n, choice in enumerate(custom_field.extra["choices"], 1)
        ]
    return body


def contact_json(account: Account, i: int, include: frozenset[str] = frozenset()) -> dict[str, Any]:
    contacts = account.contacts
    flags = contacts.flags[i]
    extra = contacts.details[i] or {}
    created, updated = iso_s(contacts.created[i]), iso_s(contacts.updated[i])
    body: dict[str, Any] = {
        "contact_id": contacts.contact_id(i),
        "email_address": _email_json(account, i, extra, created, updated),
    }
    if (first := contacts.first[i]) is not None:
        body["first_name"] = first
    if (last := contacts.last[i]) is not None:
        body["last_name"] = last
    body.update((key, extra[key]) for key in _PROFILE if key in extra)
    body["create_source"] = "Contact" if flags & CREATED_BY_CONTACT else "Account"
    body["created_at"] = created
    body["updated_at"] = updated
    if flags & DELETED:
        body["deleted_at"] = day(extra["deleted_at"])
    if include:
        body.update(_included(account, i, extra, include))
    return body


def _email_json(
    account: Account, i: int, extra: dict[str, Any], created: str, updated: str
) -> dict[str, Any]:
    contacts = account.contacts
    permission, flags = contacts.permission[i], contacts.flags[i]
    email: dict[str, Any] = {
        "address": contacts.emails[i],
        "permission_to_send": PERMISSIONS[permission],
        "created_at": created,
        "updated_at": updated,
        "opt_in_source": "Contact" if flags & OPT_IN_BY_CONTACT else "Account",
        "opt_in_date": iso_s(extra["opt_in_date"]) if "opt_in_date" in extra else created,
        "confirm_status": "pending" if permission == PENDING else "off",
    }
    if permission == UNSUBSCRIBED:
        email["opt_out_source"] = "Contact" if flags & OPT_OUT_BY_CONTACT else "Account"
        email["opt_out_date"] = iso_s(extra.get("opt_out_date", contacts.updated[i]))
        if extra.get("opt_out_reason"):
            email["opt_out_reason"] = extra["opt_out_reason"]
    return email


def _included(account: Account, i: int, extra: dict[str, Any], include: frozenset[str]) -> dict[str, Any]:
    contacts = account.contacts
    body: dict[str, Any] = {}
    if "custom_fields" in include:
        body["custom_fields"] = [
            {"custom_field_id": account.field_slots[slot].custom_field_id, "value": value}
            for slot, value in contacts.field_values(i).items()
        ]
    if "list_memberships" in include:
        body["list_memberships"] = account.list_ids_of(contacts.lists[i])
    if "phone_numbers" in include:
        body["phone_numbers"] = list(extra.get("phone_numbers", []))
    if "street_addresses" in include:
        body["street_addresses"] = list(extra.get("street_addresses", []))
    if "notes" in include:
        body["notes"] = [
            {"note_id": n["note_id"], "created_at": iso_s(contacts.created[i]), "content": n["content"]}
            for n in extra.get("notes", [])
        ]
    if "taggings" in include:
        body["taggings"] = []
    return body
