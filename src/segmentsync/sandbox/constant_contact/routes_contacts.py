"""``/v3/contacts``: search with cursor paging, read, create, update, resubscribe, delete."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

from starlette.responses import Response

from segmentsync.sandbox.constant_contact.account import Account
from segmentsync.sandbox.constant_contact.contact_write import (
    contact_index,
    create_contact,
    resubscribe,
    update_contact,
)
from segmentsync.sandbox.constant_contact.errors import bad_request, not_found
from segmentsync.sandbox.constant_contact.paging import bool_param, int_param, next_links, start_param
from segmentsync.sandbox.constant_contact.render import CONTACT_INCLUDES, contact_json
from segmentsync.sandbox.constant_contact.routing import Call, Handler, json_response
from segmentsync.sandbox.constant_contact.signup import sign_up_form
from segmentsync.sandbox.constant_contact.store import DELETED, PERMISSION_CODES, UNSUBSCRIBED, is_uuid

STATUSES = frozenset(
    {"all", "active", "deleted", "not_set", "pending_confirmation", "temp_hold", "unsubscribed"}
)
SMS_STATUSES = frozenset({"all", "explicit", "unsubscribed", "pending_confirmation", "not_set"})
TIME_FILTERS = (
    "created_after",
    "created_before",
    "updated_after",
    "updated_before",
    "optout_after",
    "optout_before",
)
MAX_LIST_FILTER = 25
MAX_TAG_FILTER = 50


class Filter:
    """Which contacts a search matches: by status (per permission code, and deleted or not) and lists."""

    def __init__(
        self, statuses: set[str], mask: int | None, when: Callable[[Account, int], bool] | None = None
    ) -> None:
        self.mask = mask  # None: any lists; 0: lists were named (or tags, SMS statuses) that nobody has
        self.when = when  # the time filters (created_*, updated_*, optout_*)
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
        if self.when is not None and not self.when(account, i):
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
        if self.when is not None:
            yield from (i for i in range(start, len(account.contacts)) if self.matches(account, i))
            return
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
        if not self.deleted and all(self.live) and self.when is None:  # the default: not deleted
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


def _instant(params: dict[str, str], name: str) -> float:
    raw = params[name]
    try:
        when = dt.datetime.fromisoformat(raw.replace(" ", "+"))  # '+' may arrive as ' ' in a query
    except ValueError as exc:
        raise bad_request(f"{name} must be an ISO-8601 date-time, e.g. 2024-10-30T18:56:35Z.") from exc
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def _time_test(params: dict[str, str]) -> Callable[[Account, int], bool] | None:
    """created_*, updated_*, optout_* (inclusive bounds); None when none is given."""
    bounds = {name: _instant(params, name) for name in TIME_FILTERS if name in params}
    if not bounds:
        return None

    def test(account: Account, i: int) -> bool:
        contacts = account.contacts
        times = {"created": contacts.created[i], "updated": contacts.updated[i]}
        if contacts.permission[i] == UNSUBSCRIBED:
            times["optout"] = (contacts.details[i] or {}).get("opt_out_date", contacts.updated[i])
        for name, bound in bounds.items():
            kind, _, side = name.partition("_")
            value = times.get(kind)
            if value is None:
                return False
            shown = int(value)  # answers show whole seconds: a time read from one must match it
            if shown < bound if side == "after" else shown > bound:
                return False
        return True

    return test


def _nobody_has(account: Account, params: dict[str, str]) -> bool:
    """Filters on what the sandbox does not emulate (tags, SMS): valid values match no contact."""
    if "tags" in params:
        tags = [tag for tag in params["tags"].split(",") if tag]
        if not 1 <= len(tags) <= MAX_TAG_FILTER or not all(map(is_uuid, tags)):
            raise bad_request(f"tags must contain 1 to {MAX_TAG_FILTER} tag IDs (UUIDs).")
        return True
    if "sms_status" in params:
        statuses = set(params["sms_status"].split(","))
        if not statuses or not statuses <= SMS_STATUSES:
            raise bad_request(
                f"sms_status must be a comma-separated list of: {', '.join(sorted(SMS_STATUSES))}."
            )
        return True
    return False


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
    if _nobody_has(account, params):
        mask = 0
    return Filter(statuses, mask, _time_test(params))


def _segment(params: dict[str, str]) -> None:
    """The account has no segments (not emulated): a valid segment_id is not found."""
    segment_id = params["segment_id"]
    others = set(params) - {"segment_id", "limit", "next"}
    if others:
        raise bad_request(
            f"segment_id can be combined only with limit, not with: {', '.join(sorted(others))}."
        )
    if not segment_id.isdigit():
        raise bad_request("segment_id must be a segment ID (a positive integer).")
    raise not_found(f"The segment {segment_id} was not found.")


async def get_contacts(call: Call) -> Response:
    params = call.params
    if "segment_id" in params:
        _segment(params)
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
