"""``POST /v3/contacts``, ``PUT /v3/contacts/{contact_id}``, ``PUT /v3/contacts/resubscribe/{contact_id}``.

* POST creates one contact: ``create_source`` (Account|Contact) is required, the email must be new
  — also among deleted contacts (409 "Email already exists for contact …").
* PUT replaces the contact's top-level properties (names, job, company, birthday, anniversary:
  omitted means removed); sub-resources (custom fields, phones, addresses, list memberships, notes)
  are replaced only when sent. ``update_source`` (Account|Contact) is required; a deleted contact is
  revived (only with ``update_source: Account``). ``permission_to_send: unsubscribed`` opts the
  contact out with ``opt_out_source`` = ``update_source``; a contact who opted out themselves
  (``opt_out_source: Contact``) can be opted back in only by their own action
  (``update_source: Contact``), never by the account.
* resubscribe sends (once per contact) the confirmation email to an unsubscribed contact: the
  contact is ``pending_confirmation`` and added to ``list_ids``; it becomes ``explicit`` when it
  confirms (``POST /_sandbox/contacts/confirm``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

from segmentsync.sandbox.constant_contact import rows as R
from segmentsync.sandbox.constant_contact.account import Account
from segmentsync.sandbox.constant_contact.errors import (
    bad_request,
    conflict,
    invalid_list_id,
    not_found,
    shown,
)
from segmentsync.sandbox.constant_contact.render import CONTACT_INCLUDES, contact_json
from segmentsync.sandbox.constant_contact.routing import Call, json_response
from segmentsync.sandbox.constant_contact.store import (
    CREATED_BY_CONTACT,
    DELETED,
    IMPLICIT,
    MAX_FIELDS_PER_CONTACT,
    MAX_LISTS_PER_CONTACT,
    OPT_IN_BY_CONTACT,
    OPT_OUT_BY_CONTACT,
    PENDING,
    PERMISSION_CODES,
    UNSUBSCRIBED,
    is_active,
    is_uuid,
    new_id,
)

SOURCES = ("Account", "Contact")
TEXT_LIMITS = {"first_name": 50, "last_name": 50, "job_title": 50, "company_name": 50}
PROFILE = ("job_title", "company_name", "birthday_month", "birthday_day", "anniversary")
ADDRESS_LIMITS = {"street": 255, "city": 50, "state": 50, "postal_code": 50, "country": 50}
PHONE_KINDS = frozenset({"home", "work", "mobile", "other"})
ADDRESS_KINDS = frozenset({"home", "work", "other"})
RESUBSCRIBED = "resubscribe_sent"  # details key: the resubscribe email was sent (once per contact)


@dataclass(slots=True)
class ContactInput:
    """A contact body, checked; ``None`` for a sub-resource means "not sent"."""

    email: str | None = None
    permission: int | None = None
    opt_out_reason: str | None = None
    first: str | None = None
    last: str | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    fields: dict[int, str] | None = None
    phones: list[dict[str, str]] | None = None
    addresses: list[dict[str, str]] | None = None
    lists: int | None = None
    notes: list[dict[str, Any]] | None = None


def _text(data: dict[str, Any], key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise bad_request(f"{key} must be a string of at most {limit} characters.")
    return value or None


def _array(data: dict[str, Any], key: str, limit: int) -> list[Any] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > limit:
        raise bad_request(f"{key} must be an array of at most {limit} items.")
    return value


def _source(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value not in SOURCES:
        raise bad_request(f"{key} is required and must be Account or Contact.")
    return str(value)


def parse(account: Account, data: dict[str, Any]) -> ContactInput:
    """Check a POST or PUT contact body (400 naming the first problem)."""
    body = ContactInput()
    email = data.get("email_address")
    if email is not None:
        if not isinstance(email, dict) or not isinstance(email.get("address"), str):
            raise bad_request("email_address must be an object with an address.")
        try:
            body.email = R.normal_email(email["address"])
        except R.RowProblem as problem:
            raise bad_request("email_address.address is not a valid email address.") from problem
        permission = email.get("permission_to_send")
        if permission is not None:
            if permission not in PERMISSION_CODES:
                raise bad_request(
                    f"email_address.permission_to_send must be one of: {', '.join(PERMISSION_CODES)}."
                )
            body.permission = PERMISSION_CODES[permission]
        body.opt_out_reason = _text(email, "opt_out_reason", 255)
    body.first = _text(data, "first_name", 50)
    body.last = _text(data, "last_name", 50)
    for key in ("job_title", "company_name"):
        if (value := _text(data, key, 50)) is not None:
            body.profile[key] = value
    try:
        if (date := R.anniversary(_text(data, "anniversary", 10))) is not None:
            body.profile["anniversary"] = date
        born = R.birthday(data.get("birthday_month"), data.get("birthday_day"))
    except R.RowProblem as problem:
        raise bad_request("birthday_month/birthday_day or anniversary is not a valid date.") from problem
    if born is not None:
        body.profile["birthday_month"], body.profile["birthday_day"] = born
    body.fields = custom_field_values(account, _array(data, "custom_fields", MAX_FIELDS_PER_CONTACT))
    body.phones = _phones(_array(data, "phone_numbers", 3))
    body.addresses = _addresses(_array(data, "street_addresses", 3))
    body.lists = _lists(account, _array(data, "list_memberships", MAX_LISTS_PER_CONTACT))
    body.notes = _notes(_array(data, "notes", 150))
    if _array(data, "taggings", 50):
        raise bad_request("taggings: tags are not emulated by the sandbox.")
    if data.get("sms_channel") is not None:
        raise bad_request("sms_channel: SMS is not emulated by the sandbox.")
    return body


def custom_field_values(account: Account, items: list[Any] | None) -> dict[int, str] | None:
    """``[{custom_field_id, value}]`` as values by field slot (400 for an unknown field, a bad value)."""
    if items is None:
        return None
    values: dict[int, str] = {}
    for item in items:
        field_id = item.get("custom_field_id") if isinstance(item, dict) else None
        custom_field = account.custom_fields.get(field_id) if isinstance(field_id, str) else None
        if custom_field is None:
            raise bad_request(f"custom_fields: the custom field {shown(field_id)} does not exist.")
        if (value := _text(item, "value", 255)) is not None:
            values[custom_field.slot] = value
    return values


def _phones(items: list[Any] | None) -> list[dict[str, str]] | None:
    if items is None:
        return None
    phones = []
    for item in items:
        number = _text(item, "phone_number", 25) if isinstance(item, dict) else None
        kind = item.get("kind", "other") if isinstance(item, dict) else None
        if number is None or kind not in PHONE_KINDS:
            raise bad_request(
                "phone_numbers: each needs a phone_number and a kind of home, work, mobile or other."
            )
        phones.append({"phone_number": number, "kind": kind})
    return phones


def _addresses(items: list[Any] | None) -> list[dict[str, str]] | None:
    if items is None:
        return None
    addresses = []
    for item in items:
        if not isinstance(item, dict) or item.get("kind") not in ADDRESS_KINDS:
            raise bad_request("street_addresses: each needs a kind of home, work or other.")
        parts = {key: _text(item, key, limit) for key, limit in ADDRESS_LIMITS.items()}
        addresses.append({"kind": item["kind"]} | {k: v for k, v in parts.items() if v is not None})
    return addresses


def existing_lists(account: Account, items: list[Any], field: str) -> int:
    """The lists named in a contact body as a mask: 400 for an id that is not a UUID or no list's."""
    for list_id in items:
        if not is_uuid(list_id):
            raise invalid_list_id(field, list_id)
        if account.live_list(list_id) is None:
            raise bad_request(f"The contact list {list_id} does not exist.")
    return account.list_mask(items)


def _lists(account: Account, items: list[Any] | None) -> int | None:
    return None if items is None else existing_lists(account, items, "list_memberships")


def _notes(items: list[Any] | None) -> list[dict[str, Any]] | None:
    if items is None:
        return None
    notes = []
    for item in items:
        content = _text(item, "content", 2000) if isinstance(item, dict) else None
        if content is None:
            raise bad_request("notes: each needs a content of at most 2000 characters.")
        notes.append({"note_id": item.get("note_id") or new_id(), "content": content})
    return notes


def _sent(data: dict[str, Any]) -> frozenset[str]:
    """The sub-resources to show in the answer: those the request sent."""
    return frozenset(key for key in CONTACT_INCLUDES if key in data) | {"list_memberships"}


async def create_contact(call: Call) -> Response:
    data = await call.json_object()
    source = _source(data, "create_source")
    account = call.account
    body = parse(account, data)
    if body.email is None:
        if body.first is None and body.last is None:
            raise bad_request("A contact needs at least one of first_name, last_name, email_address.")
        raise bad_request("email_address: the sandbox stores contacts by email address; it is required here.")
    contacts = account.contacts
    if (existing := contacts.by_email.get(body.email)) is not None:  # deleted ones too
        raise conflict(f"Validation failed: Email already exists for contact {contacts.contact_id(existing)}")
    permission = IMPLICIT if body.permission is None else body.permission
    by_contact = source == "Contact"
    flags = (CREATED_BY_CONTACT | OPT_IN_BY_CONTACT) if by_contact else 0
    i = contacts.append(body.email, permission, flags, call.now)
    if permission == UNSUBSCRIBED:
        account.unsubscribe(i, by_contact=by_contact, reason=body.opt_out_reason, now=call.now)
    _store(account, i, body)
    return json_response(contact_json(account, i, _sent(data)), 201)


async def update_contact(call: Call) -> Response:
    data = await call.json_object()
    account = call.account
    i = contact_index(call)
    source = _source(data, "update_source")
    body = parse(account, data)
    contacts = account.contacts
    if contacts.flags[i] & DELETED and source != "Account":
        raise bad_request("A deleted contact is restored only with update_source Account.")
    if body.email is not None and body.email != contacts.emails[i]:
        if (other := contacts.by_email.get(body.email)) is not None:
            raise conflict(
                f"Validation failed: Email already exists for contact {contacts.contact_id(other)}"
            )
        del contacts.by_email[contacts.emails[i]]
        contacts.emails[i] = body.email
        contacts.by_email[body.email] = i
    if body.permission is not None:
        _change_permission(account, i, body.permission, body, by_contact=source == "Contact", now=call.now)
    account.revive(i)
    contacts.first[i] = contacts.last[i] = None  # full replace of the top-level properties
    details = contacts.details_of(i)
    for key in PROFILE:
        details.pop(key, None)
    _store(account, i, body)
    contacts.updated[i] = call.now
    return json_response(contact_json(account, i, _sent(data)))


def _change_permission(
    account: Account, i: int, permission: int, body: ContactInput, *, by_contact: bool, now: float
) -> None:
    contacts = account.contacts
    current = contacts.permission[i]
    if permission == current:
        return
    if permission == UNSUBSCRIBED:
        account.unsubscribe(i, by_contact=by_contact, reason=body.opt_out_reason, now=now)
        return
    if current == UNSUBSCRIBED and contacts.flags[i] & OPT_OUT_BY_CONTACT and not by_contact:
        raise bad_request(
            "The contact unsubscribed themselves (opt_out_source Contact): only the contact can opt "
            "back in (update_source Contact, or PUT /contacts/resubscribe/{contact_id})."
        )
    account.set_permission(i, permission)
    contacts.flags[i] &= ~OPT_OUT_BY_CONTACT
    if by_contact:
        contacts.flags[i] |= OPT_IN_BY_CONTACT
    details = contacts.details_of(i)
    for key in ("opt_out_date", "opt_out_reason"):
        details.pop(key, None)
    if is_active(permission):
        details["opt_in_date"] = now


def _store(account: Account, i: int, body: ContactInput) -> None:
    contacts = account.contacts
    contacts.set_profile(i, body.first, body.last, {})
    details = contacts.details_of(i)
    details.update(body.profile)
    if body.fields is not None:
        for column in contacts.field_columns:
            if i < len(column):
                column[i] = None
        contacts.set_fields(i, body.fields)
    if body.phones is not None:
        details["phone_numbers"] = body.phones
    if body.addresses is not None:
        details["street_addresses"] = body.addresses
    if body.notes is not None:
        details["notes"] = body.notes
    if body.lists is not None:
        account.remove_memberships(i, contacts.lists[i] & ~body.lists)
        account.add_memberships(i, body.lists)


def contact_index(call: Call) -> int:
    contact_id = call.path_param("contact_id")
    i = call.account.contacts.index_of(contact_id)
    if i is None:
        if len(contact_id) != 36:
            raise not_found("contact_id is in an invalid format.")
        raise not_found(f"Contact {contact_id} not found.")
    return i


async def resubscribe(call: Call) -> Response:
    """Once per contact: the confirmation email is "sent"; the contact waits as pending_confirmation."""
    data = await call.json_object()
    account = call.account
    i = contact_index(call)
    list_ids = data.get("list_ids")
    if not isinstance(list_ids, list) or not 1 <= len(list_ids) <= MAX_LISTS_PER_CONTACT:
        raise bad_request(f"list_ids is required and must contain 1 to {MAX_LISTS_PER_CONTACT} list IDs.")
    mask = existing_lists(account, list_ids, "list_ids")
    contacts = account.contacts
    details = contacts.details_of(i)
    if details.get(RESUBSCRIBED):
        raise conflict("A resubscribe email was already sent to this contact; it can be sent only once.")
    if contacts.permission[i] != UNSUBSCRIBED or contacts.flags[i] & DELETED:
        raise bad_request("Only an unsubscribed contact can be sent a resubscribe email.")
    details[RESUBSCRIBED] = call.now
    account.set_permission(i, PENDING)
    account.add_memberships(i, mask)
    contacts.updated[i] = call.now
    return Response(status_code=200)


def confirm(account: Account, i: int, now: float) -> bool:
    """The contact clicks the confirmation link (control endpoint); False if nothing was pending."""
    contacts = account.contacts
    if contacts.permission[i] != PENDING:
        return False
    account.set_permission(i, PERMISSION_CODES["explicit"])
    contacts.flags[i] = (contacts.flags[i] | OPT_IN_BY_CONTACT) & ~OPT_OUT_BY_CONTACT
    details = contacts.details_of(i)
    for key in ("opt_out_date", "opt_out_reason"):
        details.pop(key, None)
    details["opt_in_date"] = contacts.updated[i] = now
    return True
