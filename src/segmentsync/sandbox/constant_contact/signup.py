"""``POST /v3/contacts/sign_up_form``: create or update one contact with explicit permission.

Unlike the import, this is the contact's own consent: a new contact gets ``explicit`` permission
(opt-in source Contact); an existing one becomes ``explicit`` even if it had unsubscribed, a
deleted one is restored; lists and custom fields are added to, never replaced.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from segmentsync.sandbox.constant_contact import rows as R
from segmentsync.sandbox.constant_contact.account import Account
from segmentsync.sandbox.constant_contact.contact_write import custom_field_values, existing_lists
from segmentsync.sandbox.constant_contact.errors import bad_request
from segmentsync.sandbox.constant_contact.routing import Call, json_response
from segmentsync.sandbox.constant_contact.store import (
    CREATED_BY_CONTACT,
    EXPLICIT,
    MAX_FIELDS_PER_CONTACT,
    MAX_LISTS_PER_CONTACT,
    OPT_IN_BY_CONTACT,
    OPT_OUT_BY_CONTACT,
)

PROFILE_LIMITS = {"first_name": 50, "last_name": 50, "job_title": 50, "company_name": 50}
ADDRESS_LIMITS = {"kind": 20, "street": 255, "city": 50, "state": 50, "postal_code": 50, "country": 50}


async def sign_up_form(call: Call) -> Response:
    data = await call.json_object()
    account = call.account
    try:
        email = R.normal_email(data.get("email_address"))
        props = _profile(data)
        fields = _custom_fields(account, data.get("custom_fields"))
    except R.RowProblem as problem:
        raise bad_request(f"Invalid contact: {R.MESSAGES[problem.reason][1]}.") from problem
    mask = _lists(account, data.get("list_memberships"))
    contacts = account.contacts
    i = contacts.by_email.get(email)
    if i is not None:
        if (contacts.lists[i] | mask).bit_count() > MAX_LISTS_PER_CONTACT:
            raise bad_request("A contact can be a member of at most 50 lists.")
        if len(contacts.field_values(i) | fields) > MAX_FIELDS_PER_CONTACT:
            raise bad_request("A contact can have at most 25 custom fields.")
        current = contacts.details[i] or {}
        try:
            for key in ("phone_numbers", "street_addresses"):
                if key in props:
                    props[key] = R.merge_kinds(current.get(key, []), props[key])
        except R.RowProblem as problem:
            raise bad_request(
                "A contact can have at most 3 phone numbers and 3 street addresses."
            ) from problem
    created = i is None
    if i is None:
        i = contacts.append(email, EXPLICIT, CREATED_BY_CONTACT | OPT_IN_BY_CONTACT, call.now)
    else:
        account.revive(i)
        account.set_permission(i, EXPLICIT)
        contacts.flags[i] = (contacts.flags[i] | OPT_IN_BY_CONTACT) & ~OPT_OUT_BY_CONTACT
        contacts.updated[i] = call.now
        contacts.details_of(i)["opt_in_date"] = call.now
    _store(account, i, props, fields)
    account.add_memberships(i, mask)
    body = {"contact_id": contacts.contact_id(i), "action": "created" if created else "updated"}
    return json_response(body, 201 if created else 200)


def _lists(account: Account, value: Any) -> int:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_LISTS_PER_CONTACT:
        raise bad_request("list_memberships is required and must contain 1 to 50 list IDs.")
    return existing_lists(account, value, "list_memberships")


def _profile(data: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for key, limit in PROFILE_LIMITS.items():
        if (value := R.text(data.get(key), limit)) is not None:
            props[key] = value
    if (phone := R.text(data.get("phone_number"), 25)) is not None:
        props["phone_numbers"] = [{"kind": "other", "phone_number": phone}]
    if (date := R.anniversary(data.get("anniversary"))) is not None:
        props["anniversary"] = date
    if (born := R.birthday(data.get("birthday_month"), data.get("birthday_day"))) is not None:
        props["birthday_month"], props["birthday_day"] = born
    address = data.get("street_address")
    if address is not None:
        if not isinstance(address, dict):
            raise R.RowProblem("bad_value")
        checked = {key: R.text(address.get(key), limit) for key, limit in ADDRESS_LIMITS.items()}
        props["street_addresses"] = [{"kind": "home"} | {k: v for k, v in checked.items() if v is not None}]
    return props


def _custom_fields(account: Account, value: Any) -> dict[int, str]:
    if value is None:
        return {}
    if not isinstance(value, list) or len(value) > MAX_FIELDS_PER_CONTACT:
        raise R.RowProblem("too_many_fields")
    return custom_field_values(account, value) or {}


def _store(account: Account, i: int, props: dict[str, Any], fields: dict[int, str]) -> None:
    contacts = account.contacts
    if "first_name" in props:
        contacts.first[i] = contacts.name(props.pop("first_name"))
    if "last_name" in props:
        contacts.last[i] = contacts.name(props.pop("last_name"))
    if fields:
        contacts.set_fields(i, fields)
    if props:
        contacts.details_of(i).update(props)  # phones and addresses are merged already
