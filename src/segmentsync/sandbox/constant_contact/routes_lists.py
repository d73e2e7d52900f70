"""``/v3/contact_lists``: list, create, read, update, delete (an activity)."""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import Response

from segmentsync.sandbox.constant_contact.account import Account
from segmentsync.sandbox.constant_contact.activities import Outcome
from segmentsync.sandbox.constant_contact.errors import bad_request, not_found
from segmentsync.sandbox.constant_contact.paging import bool_param, int_param, next_links, start_param
from segmentsync.sandbox.constant_contact.render import list_json
from segmentsync.sandbox.constant_contact.routing import Call, Handler, json_response
from segmentsync.sandbox.constant_contact.store import ContactList, is_uuid

LIST_STATUSES = frozenset({"all", "active", "deleted"})


def _membership_param(params: dict[str, str]) -> str | None:
    value = params.get("include_membership_count")
    if value not in (None, "all", "active"):
        raise bad_request("include_membership_count must be all or active.")
    return value


def _status_filter(params: dict[str, str]) -> set[str]:
    statuses = set(params.get("status", "active").split(","))
    if not all(statuses):
        raise bad_request("status must be a comma-separated list of all, active, deleted.")
    channel = params.get("channel_type", "email")
    if channel not in ("email", "sms"):
        raise bad_request("channel_type must be email or sms.")
    bool_param(params, "include_sms_membership_count")
    if channel == "sms":  # SMS is not emulated: the account has no SMS lists
        return set()
    if not statuses <= LIST_STATUSES:
        raise bad_request("status must be a comma-separated list of all, active, deleted.")
    return {"active", "deleted"} if "all" in statuses else statuses


async def get_lists(call: Call) -> Response:
    params = call.params
    limit = int_param(params, "limit", default=50, low=1, high=1000)
    include_count = bool_param(params, "include_count")
    membership = _membership_param(params)
    statuses = _status_filter(params)
    name = params.get("name")
    matching = [
        lst
        for lst in call.account.lists.values()
        if ("deleted" if lst.deleted_at is not None else "active") in statuses
        and (name is None or lst.name == name)
    ]
    start = start_param(params)
    end = start + limit
    body: dict[str, Any] = {"lists": [list_json(lst, membership) for lst in matching[start:end]]}
    if include_count:
        body["lists_count"] = len(matching)
    body.update(next_links("/v3/contact_lists", params, end if end < len(matching) else None))
    return json_response(body)


def _list_fields(data: dict[str, Any]) -> tuple[str, str | None, bool]:
    name, description, favorite = data.get("name"), data.get("description"), data.get("favorite", False)
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise bad_request("name is required and must be 1 to 255 characters.")
    if "description" in data and (not isinstance(description, str) or len(description) > 255):
        raise bad_request("description must be a string of at most 255 characters.")
    if not isinstance(favorite, bool):
        raise bad_request("favorite must be true or false.")
    return name, description, favorite


async def create_list(call: Call) -> Response:
    name, description, favorite = _list_fields(await call.json_object())
    lst = call.account.create_list(name, description, favorite)
    return json_response(list_json(lst), 201)


def _find(call: Call) -> ContactList:
    list_id = call.path_param("list_id")
    if not is_uuid(list_id):
        raise bad_request(f"list_id is in an invalid format: {list_id}.")
    lst = call.account.live_list(list_id)
    if lst is None:
        raise not_found(f"The contact list {list_id} was not found.")
    return lst


async def get_list(call: Call) -> Response:
    membership = _membership_param(call.params)
    return json_response(list_json(_find(call), membership))


async def update_list(call: Call) -> Response:
    data = await call.json_object()
    lst = _find(call)
    name, description, favorite = _list_fields(data)
    call.account.check_list_name(name, exclude=lst)
    lst.name, lst.description, lst.favorite = name, description, favorite
    lst.updated_at = time.time()
    return json_response(list_json(lst))


async def delete_list(call: Call) -> Response:
    """202 with a ``list_delete`` activity; the list is gone at once, its memberships when it completes."""
    lst = _find(call)
    activity = call.queue("list_delete", max(1, lst.members), _strip(call.account, lst), {"list_count": 1})
    lst.deleted_at = lst.updated_at = time.time()  # gone at once (its memberships when processed)
    body = activity.to_json(call.now, fresh=True)
    del body["status"]  # the delete answer has no status counters
    return json_response(body, 202, headers={"Location": f"/v3/activities/{activity.activity_id}"})


def _strip(account: Account, lst: ContactList) -> Any:
    def work() -> Outcome:
        account.strip_slot(lst)
        return Outcome()

    return work


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/v3/contact_lists", get_lists),
    ("POST", "/v3/contact_lists", create_list),
    ("GET", "/v3/contact_lists/{list_id}", get_list),
    ("PUT", "/v3/contact_lists/{list_id}", update_list),
    ("DELETE", "/v3/contact_lists/{list_id}", delete_list),
]
