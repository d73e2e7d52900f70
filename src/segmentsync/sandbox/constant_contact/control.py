"""``/_sandbox/...``: control endpoints outside the platform's API (tests, benchmarks, demo)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segmentsync.sandbox.constant_contact import contact_write
from segmentsync.sandbox.constant_contact.account import Account, Owner
from segmentsync.sandbox.constant_contact.oauth import SCOPES
from segmentsync.sandbox.constant_contact.routing import json_response
from segmentsync.sandbox.constant_contact.state import ACCOUNT_SCOPES, Emulator
from segmentsync.sandbox.constant_contact.store import DELETED, PERMISSIONS
from segmentsync.sandbox.faults import apply_control
from segmentsync.sandbox.received import received_summary


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ControlError(400, "the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise ControlError(400, "the body must be a JSON object")
    return data


ControlHandler = Callable[[Emulator, Request], Awaitable[Any]]


def _route(emulator: Emulator, path: str, handler: ControlHandler, methods: list[str]) -> Route:
    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(emulator, request)
        except ControlError as error:
            return json_response({"error": str(error)}, error.status)
        except (ValueError, ValidationError) as error:
            return json_response({"error": str(error)}, 400)
        return result if isinstance(result, Response) else json_response(result)

    return Route(path, endpoint, methods=methods)


async def reset(emulator: Emulator, request: Request) -> dict[str, Any]:
    emulator.reset()
    return {"reset": True}


async def create_account(emulator: Emulator, request: Request) -> Response:
    body = await _body(request)
    name = body.get("name") or "Sandbox account"
    facts = {
        key: body[key]
        for key in ("organization_name", "contact_email", "first_name", "last_name")
        if key in body
    }
    wrong = [key for key, value in facts.items() if not isinstance(value, str)]
    if wrong:
        raise ControlError(400, f"{', '.join(wrong)} must be a string")
    scopes = body.get("scopes", sorted(ACCOUNT_SCOPES))
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s in SCOPES for s in scopes):
        raise ControlError(400, f"scopes must be an array of: {', '.join(sorted(SCOPES))}")
    made = emulator.account_with_tokens(str(name), Owner(**facts), frozenset(scopes))
    return json_response(made, 201)


async def list_accounts(emulator: Emulator, request: Request) -> dict[str, Any]:
    return {"accounts": [{"account_id": a.account_id, "name": a.name} for a in emulator.accounts.values()]}


async def create_app(emulator: Emulator, request: Request) -> Response:
    body = await _body(request)
    uris = body.get("redirect_uris") or []
    if not isinstance(uris, list) or not all(isinstance(uri, str) for uri in uris):
        raise ControlError(400, "redirect_uris must be an array of URLs")
    app = emulator.create_app(str(body.get("name") or "Sandbox application"), tuple(uris))
    return json_response({"client_id": app.client_id, "client_secret": app.client_secret}, 201)


async def faults(emulator: Emulator, request: Request) -> dict[str, Any]:
    body = await _body(request) if request.method == "POST" else {}
    return apply_control(body, emulator.faults, emulator.update_limits)


async def stats(emulator: Emulator, request: Request) -> dict[str, Any]:
    return {**emulator.stats.to_json(emulator.faults.injected), "today": emulator.limiter.today()}


async def list_members(emulator: Emulator, request: Request) -> dict[str, Any]:
    """Everyone on a list in one answer: a fast read-back for tests and benchmarks."""
    list_id = request.path_params["list_id"]
    found = emulator.find_list(list_id)
    if found is None:
        raise ControlError(404, f"no list {list_id}")
    account, lst = found
    account.activities.advance(time.time())
    return {"list_id": lst.list_id, "name": lst.name, "members": _members(account, 1 << lst.slot)}


def _members(account: Account, bit: int) -> list[dict[str, Any]]:
    contacts = account.contacts
    emails, first, last, permission = contacts.emails, contacts.first, contacts.last, contacts.permission
    columns = [
        (f.name, column) for f, column in zip(account.field_slots, contacts.field_columns, strict=False)
    ]
    return [
        {
            "contact_id": contacts.contact_id(i),
            "email": emails[i],
            "first_name": first[i],
            "last_name": last[i],
            "custom_fields": {
                name: value
                for name, column in columns
                if i < len(column) and (value := column[i]) is not None
            },
            "permission_to_send": PERMISSIONS[permission[i]],
        }
        for i, mask in enumerate(contacts.lists)
        if mask & bit
    ]


async def received(emulator: Emulator, request: Request) -> dict[str, Any]:
    """How many times each address was imported into a list: POST starts counting, GET reads."""
    list_id = request.path_params["list_id"]
    found = emulator.find_list(list_id)
    if found is None:
        raise ControlError(404, f"no list {list_id}")
    account = found[0]
    account.activities.advance(time.time())
    if request.method == "POST":
        account.received[list_id] = {}
    return received_summary(account.received.get(list_id))


async def unsubscribe(emulator: Emulator, request: Request) -> dict[str, Any]:
    """The contact opts out on the platform's side (in every account that has it, or in one)."""
    body = await _body(request)
    email = str(body.get("email", "")).strip().lower()
    accounts = [emulator.accounts[body["account_id"]]] if body.get("account_id") in emulator.accounts else []
    if "account_id" not in body:
        accounts = list(emulator.accounts.values())
    now = time.time()
    done = 0
    for account in accounts:
        account.activities.advance(now)
        i = account.contacts.by_email.get(email)
        if i is not None and not account.contacts.flags[i] & DELETED:
            account.unsubscribe(i, by_contact=True, reason=body.get("reason"), now=now)
            done += 1
    if not done:
        raise ControlError(404, f"no contact with the email {email!r}")
    return {"unsubscribed": done}


async def confirm(emulator: Emulator, request: Request) -> dict[str, Any]:
    """The contact confirms the resubscribe email (``pending_confirmation`` -> ``explicit``)."""
    body = await _body(request)
    email = str(body.get("email", "")).strip().lower()
    now = time.time()
    done = 0
    for account in emulator.accounts.values():
        if "account_id" in body and account.account_id != body["account_id"]:
            continue
        account.activities.advance(now)
        i = account.contacts.by_email.get(email)
        done += i is not None and contact_write.confirm(account, i, now)
    if not done:
        raise ControlError(404, f"no contact waiting for confirmation with the email {email!r}")
    return {"confirmed": done}


async def expire_tokens(emulator: Emulator, request: Request) -> dict[str, Any]:
    body = await _body(request)
    return {"expired": emulator.tokens.expire(body.get("access_token"))}


def control_routes(emulator: Emulator) -> list[Route]:
    table: list[tuple[str, ControlHandler, list[str]]] = [
        ("/_sandbox/reset", reset, ["POST"]),
        ("/_sandbox/accounts", create_account, ["POST"]),
        ("/_sandbox/accounts", list_accounts, ["GET"]),
        ("/_sandbox/apps", create_app, ["POST"]),
        ("/_sandbox/faults", faults, ["GET", "POST"]),
        ("/_sandbox/stats", stats, ["GET"]),
        ("/_sandbox/lists/{list_id}/members", list_members, ["GET"]),
        ("/_sandbox/lists/{list_id}/received", received, ["GET", "POST"]),
        ("/_sandbox/contacts/unsubscribe", unsubscribe, ["POST"]),
        ("/_sandbox/contacts/confirm", confirm, ["POST"]),
        ("/_sandbox/tokens/expire", expire_tokens, ["POST"]),
    ]
    return [_route(emulator, path, handler, methods) for path, handler, methods in table]
