"""``/v3/activities``: JSON import, list-membership removal and addition, activity status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from segmentsync.sandbox.constant_contact import importer
from segmentsync.sandbox.constant_contact.account import Account
from segmentsync.sandbox.constant_contact.activities import Outcome, Work
from segmentsync.sandbox.constant_contact.errors import bad_request, invalid_list_id, not_found
from segmentsync.sandbox.constant_contact.paging import int_param, next_links, start_param
from segmentsync.sandbox.constant_contact.routing import Call, Handler, json_response
from segmentsync.sandbox.constant_contact.store import DELETED, UNSUBSCRIBED, is_active, is_uuid

SOURCES = ("contact_ids", "list_ids", "all_active_contacts", "tag_ids", "engagement_level")
# the spec lists no "initialized" filter; accepted anyway (it is a state activities show)
ACTIVITY_STATES = frozenset({"initialized", "processing", "completed", "cancelled", "failed", "timed_out"})
MAX_SOURCE_CONTACTS = 500
MAX_LISTS = 50  # target lists; source lists too (older docs: 50, newer: 100 — the stricter)


async def json_import(call: Call) -> Response:
    body = await call.json_body()
    account = call.account
    job = importer.receive(account, body)
    counts = dict.fromkeys(importer.COUNTERS, 0)
    activity = call.queue("contacts_json_import", job.rows, lambda: importer.apply(account, job), counts)
    return json_response(activity.to_json(call.now, fresh=True), 201)


async def get_activity(call: Call) -> Response:
    activity_id = call.path_param("activity_id")
    activity = call.account.activities.by_id.get(activity_id)
    if activity is None:
        raise not_found(f"Resource not found for the activity_id {activity_id}.")
    return json_response(activity.to_json(call.now))


async def get_activities(call: Call) -> Response:
    params = call.params
    limit = int_param(params, "limit", default=50, low=1, high=500)
    state = params.get("state")
    if state is not None and state not in ACTIVITY_STATES:
        raise bad_request("state must be one of processing, completed, cancelled, failed, timed_out.")
    now = call.now
    matching = [a for a in call.account.activities.recent() if state is None or a.state(now) == state]
    start = start_param(params)
    end = start + limit
    body: dict[str, Any] = {"activities": [a.to_json(now) for a in matching[start:end]]}
    body.update(next_links("/v3/activities", params, end if end < len(matching) else None))
    return json_response(body)


def _target_mask(account: Account, data: dict[str, Any]) -> tuple[int, int]:
    """The target lists as a mask (404 for an unknown one) and how many there are."""
    list_ids = data.get("list_ids")
    if not isinstance(list_ids, list) or not 1 <= len(list_ids) <= MAX_LISTS:
        raise bad_request(f"list_ids is required and must contain 1 to {MAX_LISTS} list IDs.")
    return _lists_mask(account, list_ids), len(set(list_ids))


def _lists_mask(account: Account, list_ids: list[Any]) -> int:
    mask = 0
    for list_id in list_ids:
        if not is_uuid(list_id):
            raise invalid_list_id("list_ids", list_id)
        lst = account.live_list(list_id)
        if lst is None:
            raise not_found(f"The contact list {list_id} was not found.")
        mask |= 1 << lst.slot
    return mask


def _contact_ids(value: Any, name: str, limit: int) -> list[str]:
    if not isinstance(value, list) or len(value) > limit:
        raise bad_request(f"{name} must be an array of at most {limit} contact IDs.")
    for item in value:
        if not is_uuid(item):
            raise bad_request(f"{name} contains an invalid contact ID: {item}.")
    return value


Resolver = Callable[[], list[int]]


def _source(account: Account, source: Any, excluded: set[int]) -> tuple[Resolver, int]:
    """A function giving the source contacts when the activity runs, and an item estimate."""
    if not isinstance(source, dict) or sum(key in source for key in SOURCES) != 1:
        raise bad_request(f"source must contain exactly one of: {', '.join(SOURCES)}.")
    contacts = account.contacts
    if "contact_ids" in source:
        ids = _contact_ids(source["contact_ids"], "source.contact_ids", MAX_SOURCE_CONTACTS)
        return (lambda: [i for c in ids if (i := contacts.index_of(c)) is not None]), len(ids)
    if "list_ids" in source:
        lists = source["list_ids"]
        if not isinstance(lists, list) or not 1 <= len(lists) <= MAX_LISTS:
            raise bad_request(f"source.list_ids must contain 1 to {MAX_LISTS} list IDs.")
        mask = _lists_mask(account, lists)
        estimate = sum(lst.members for lst in account.live_lists() if mask >> lst.slot & 1)
        return (lambda: [i for i, m in enumerate(contacts.lists) if m & mask and i not in excluded]), estimate
    if "all_active_contacts" in source:
        if source["all_active_contacts"] is not True:
            raise bad_request("source.all_active_contacts must be true.")

        def active() -> list[int]:
            perms, flags = contacts.permission, contacts.flags
            return [
                i
                for i in range(len(contacts))
                if is_active(perms[i]) and not flags[i] & DELETED and i not in excluded
            ]

        return active, len(contacts) - contacts.deleted_count
    return list, 0  # tags and engagement levels are not emulated: nobody has them


def _excluded(account: Account, data: dict[str, Any]) -> set[int]:
    exclude, source = data.get("exclude"), data.get("source")
    if exclude is None:
        return set()
    if isinstance(source, dict) and not {"list_ids", "all_active_contacts"} & source.keys():
        raise bad_request("exclude is only allowed with source list_ids or all_active_contacts.")
    if not isinstance(exclude, dict):
        raise bad_request("exclude must be an object with contact_ids.")
    ids = _contact_ids(exclude.get("contact_ids", []), "exclude.contact_ids", 10_000)
    return {i for c in ids if (i := account.contacts.index_of(c)) is not None}


async def remove_memberships(call: Call) -> Response:
    return await _membership_activity(call, remove=True)


async def add_memberships(call: Call) -> Response:
    return await _membership_activity(call, remove=False)


async def _membership_activity(call: Call, *, remove: bool) -> Response:
    data = await call.json_object()
    account = call.account
    target, list_count = _target_mask(account, data)
    resolve, estimate = _source(account, data.get("source"), _excluded(account, data))
    work = _removal(account, resolve, target) if remove else _addition(account, resolve, target)
    kind = "remove_list_memberships" if remove else "add_list_memberships"
    activity = call.queue(kind, estimate, work, {"list_count": list_count})
    return json_response(activity.to_json(call.now, fresh=True), 201)


def _removal(account: Account, resolve: Resolver, target: int) -> Work:
    def work() -> Outcome:
        for i in resolve():
            account.remove_memberships(i, target)
        return Outcome()

    return work


def _addition(account: Account, resolve: Resolver, target: int) -> Work:
    def work() -> Outcome:
        contacts = account.contacts
        for i in resolve():
            if contacts.permission[i] != UNSUBSCRIBED:
                account.revive(i)  # adding a deleted contact to a list restores it
                account.add_memberships(i, target)
        return Outcome()

    return work


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/v3/activities/contacts_json_import", json_import),
    ("POST", "/v3/activities/remove_list_memberships", remove_memberships),
    ("POST", "/v3/activities/add_list_memberships", add_memberships),
    ("GET", "/v3/activities", get_activities),
    ("GET", "/v3/activities/{activity_id}", get_activity),
]
