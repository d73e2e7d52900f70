"""``/v3/contacts``: search with cursor paging, read, create, update, resubscribe, delete."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.responses import Response

from segmentsync.sandbox.constant_contact.account import Account
from segmentsync.sandbox.constant_contact.contact_write import (
    contact_index,
    create_contact,
    resubscribe,
    update_contact,
)
from segmentsync.sandbox.constant_contact.errors import bad_request
from segmentsync.sandbox.constant_contact.paging import bool_param, int_param, next_links, start_param
from segmentsync.sandbox.constant_contact.render import CONTACT_INCLUDES, contact_json
from segmentsync.sandbox.constant_contact.routing import Call, Handler, json_response
from segmentsync.sandbox.constant_contact.signup import sign_up_form
from segmentsync.sandbox.constant_contact.store import DELETED, PERMISSION_CODES, is_uuid

STATUSES = frozenset(
    {"all", "active", "deleted", "not_set", "pending_confirmation", "temp_hold", "unsubscribed"}
)
NOT_EMULATED = (
    "segment_id", "tags", "updated_after", "updated_before", "created_after", "created_before",
    "optout_after", "optout_before", "sms_status",
)  # fmt: skip
MAX_LIST_FILTER = 25


class Filter:
    """Which contacts a search matches: by status (per permission code, and deleted or not) and lists."""

    def __init__(self, statuses: set[str], mask: int | None) -> None:
        self.mask = mask  # None: any lists; 0: lists were named but none exists
        self.deleted = bool(statuses & {"all", "deleted"})
        live = [not statuses or "all" in statuses] * len(PERMISSION_CODES)
        for name in statuses & {"not_set", "pending_confirmation", "temp_hold", "unsubscribed"}:
            live[PERMISSION_CODES[name]] = True
        if "active" in statuses:
            live[PERMISSION_CODES["implicit"]] = live[PERMISSION_CODES["explicit"]] = True
        self.live = tuple(live)

    def matches(self, account: Account, i: int) -> bool:
        contacts = account.contacts
        if self.mask is not None and not contacts.lists[i] & self.mask:
            return False
        return self.deleted if contacts.flags[i] & DELETED else self.live[contacts.permission[i]]

    def scan(self, account: Account, start: int, limit: int) -> tuple[list[int], int | None]:
        """Up to ``limit`` matches from ``start``, and where the next match is (None: no more)."""
        found: list[int] = []
        if self.mask == 0:
            return found, None
        for i in self._matching(account, start):
            if len(found) == limit:
                return found, i
            found.append(i)
        return found, None

    def _matching(self, account: Account, start: int) -> Iterator[int]:
        contacts = account.contacts
        lists, flags, permissions = contacts.lists, contacts.flags, contacts.permission
        mask, deleted, live = self.mask, self.deleted, self.live
        for i in range(start, len(contacts)):
            if (mask is None or lists[i] & mask) and (
                deleted if flags[i] & DELETED else live[permissions[i]]
            ):
                yield i

    def count(self, account: Account) -> int:
        contacts = account.contacts
        if self.mask == 0:
            return 0
        if not self.deleted and all(self.live):  # the default: every contact not deleted
            if self.mask is None:
                return len(contacts) - contacts.deleted_count
            lists = [lst for lst in account.live_lists() if self.mask >> lst.slot & 1]
            if len(lists) == 1:
                return lists[0].members
        return sum(1 for _ in self._matching(account, 0))


def _include(params: dict[str, str]) -> frozenset[str]:
    include = frozenset(filter(None, params.get("include", "").split(",")))
    if not include <= CONTACT_INCLUDES or ("include" in params and not include):
        raise bad_request(
            f"include must be a comma-separated list of: {', '.join(sorted(CONTACT_INCLUDES))}."
        )
    return include


def _filter(account: Account, params: dict[str, str]) -> Filter:
    statuses = set(filter(None, params.get("status", "").split(",")))
    if not statuses <= STATUSES or ("status" in params and not statuses):
        raise bad_request(f"status must be a comma-separated list of: {', '.join(sorted(STATUSES))}.")
    mask = None
    if "lists" in params:
        list_ids = [item for item in params["lists"].split(",") if item]
        if not 1 <= len(list_ids) <= MAX_LIST_FILTER:
            raise bad_request(f"lists must contain 1 to {MAX_LIST_FILTER} list IDs.")
        if not all(map(is_uuid, list_ids)):
            raise bad_request("lists must contain list IDs (UUIDs).")
        mask = account.list_mask(list_ids)
    return Filter(statuses, mask)


async def get_contacts(call: Call) -> Response:
    params = call.params
    unsupported = [name for name in NOT_EMULATED if name in params]
    if unsupported:
        raise bad_request(f"The sandbox does not emulate these filters: {', '.join(unsupported)}.")
    account = call.account
    limit = int_param(params, "limit", default=50, low=1, high=500)
    include = _include(params)
    search = _filter(account, params)
    if "email" in params:
        i = account.contacts.by_email.get(params["email"].strip().lower())
        found, following = ([i] if i is not None and search.matches(account, i) else []), None
    else:
        found, following = search.scan(account, start_param(params), limit)
    body: dict[str, Any] = {"contacts": [contact_json(account, i, include) for i in found]}
    if bool_param(params, "include_count"):
        body["contacts_count"] = len(found) if "email" in params else search.count(account)
    body.update(next_links("/v3/contacts", params, following))
    return json_response(body)


async def get_contact(call: Call) -> Response:
    include = _include(call.params)
    return json_response(contact_json(call.account, contact_index(call), include))


async def delete_contact(call: Call) -> Response:
    """204: the contact is kept as deleted (no list memberships, not counted, revivable)."""
    call.account.delete_contact(contact_index(call), call.now)
    return Response(status_code=204)


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/v3/contacts", get_contacts),
    ("POST", "/v3/contacts", create_contact),
    ("POST", "/v3/contacts/sign_up_form", sign_up_form),
    ("PUT", "/v3/contacts/resubscribe/{contact_id}", resubscribe),
    ("GET", "/v3/contacts/{contact_id}", get_contact),
    ("PUT", "/v3/contacts/{contact_id}", update_contact),
    ("DELETE", "/v3/contacts/{contact_id}", delete_contact),
]
