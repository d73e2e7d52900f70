"""``/_sandbox/...``: control endpoints for tests, benchmarks and demos (not part of CM's API)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from segmentsync.sandbox.campaign_monitor import errors, subscribers
from segmentsync.sandbox.campaign_monitor.call import json_response
from segmentsync.sandbox.campaign_monitor.errors import ApiError
from segmentsync.sandbox.campaign_monitor.fields import lower_keys
from segmentsync.sandbox.campaign_monitor.limits import update_limits
from segmentsync.sandbox.campaign_monitor.listing import render
from segmentsync.sandbox.campaign_monitor.state import Emulator
from segmentsync.sandbox.campaign_monitor.store import (
    ACTIVE,
    BOUNCED,
    DELETED,
    STATE,
    STATES,
    UNCONFIRMED,
    UNSUBSCRIBED,
    MailingList,
    Subscriber,
)
from segmentsync.sandbox.faults import apply_control
from segmentsync.sandbox.received import received_summary

CHUNK: Final = 10_000  # subscribers per piece of the streamed read-back
Endpoint = Callable[[Request], Awaitable[Response]]


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ControlError(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body


def _guard(handler: Endpoint) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ControlError as error:
            return json_response(error.status, {"error": str(error)})

    return endpoint


def _list(emulator: Emulator, request: Request) -> MailingList:
    mailing_list = emulator.store.lists.get(request.path_params["listid"])
    if mailing_list is None:
        raise ControlError(404, "no such list")
    return mailing_list


def routes(emulator: Emulator) -> list[Route]:
    async def reset(request: Request) -> Response:
        emulator.reset()
        return json_response(200, {"reset": True})

    async def create_client(request: Request) -> Response:
        body = lower_keys(await _body(request))
        client = emulator.store.create_client(str(body.get("name") or "Sandbox client"))
        return json_response(201, {"ClientID": client.client_id, "ApiKey": client.api_key})

    async def create_oauth_app(request: Request) -> Response:
        body = lower_keys(await _body(request))
        redirect_uri = body.get("redirect_uri") or body.get("redirecturi")
        app = emulator.oauth.register(str(body.get("name") or "Sandbox app"), redirect_uri)
        return json_response(201, {"client_id": app.client_id, "client_secret": app.client_secret})

    async def faults(request: Request) -> Response:
        changes = await _body(request) if request.method == "POST" else {}

        def limits(updates: dict[str, Any]) -> dict[str, Any]:
            emulator.limits = update_limits(emulator.limits, updates)
            return emulator.limits.model_dump()

        try:
            return json_response(200, apply_control(changes, emulator.faults, limits))
        except ValueError as error:  # pydantic's ValidationError is one too
            raise ControlError(400, str(error)) from None

    async def stats(request: Request) -> Response:
        return json_response(200, emulator.stats())

    return [
        Route("/_sandbox/reset", _guard(reset), methods=["POST"]),
        Route("/_sandbox/clients", _guard(create_client), methods=["POST"]),
        Route("/_sandbox/oauth_apps", _guard(create_oauth_app), methods=["POST"]),
        Route("/_sandbox/faults", _guard(faults), methods=["GET", "POST"]),
        Route("/_sandbox/stats", _guard(stats), methods=["GET"]),
        *_subscriber_routes(emulator),
        *_token_routes(emulator),
    ]


def _subscriber_routes(emulator: Emulator) -> list[Route]:
    async def read_back(request: Request) -> Response:
        """Every subscriber of a list in one streamed JSON array (``?state=Active`` to filter)."""
        mailing_list = _list(emulator, request)
        state = request.query_params.get("state")
        if state is not None and state not in STATES:
            raise ControlError(400, f"state must be one of {', '.join(STATES)}")
        rows = [
            (key, sub)
            for key, sub in mailing_list.subscribers.items()
            if state is None or sub[STATE] == state
        ]
        return StreamingResponse(_stream(mailing_list, rows), media_type="application/json")

    async def set_state(request: Request) -> Response:
        """What happens on the platform: a recipient unsubscribes, bounces, is deleted or comes back."""
        mailing_list = _list(emulator, request)
        body = lower_keys(await _body(request))
        email, state, now = body.get("emailaddress"), body.get("state"), int(emulator.now())
        try:
            _set_state(emulator, mailing_list, email, state, now)
        except ApiError as error:
            raise ControlError(404 if error.code == 203 else 400, error.message) from None
        return json_response(200, {"EmailAddress": email, "State": state})

    async def received(request: Request) -> Response:
        """How many times each address reached the list: POST starts counting (from zero), GET reads."""
        mailing_list = _list(emulator, request)
        if request.method == "POST":
            mailing_list.received = {}
        return json_response(200, received_summary(mailing_list.received))

    return [
        Route("/_sandbox/lists/{listid}/subscribers", _guard(read_back), methods=["GET"]),
        Route("/_sandbox/lists/{listid}/subscribers/state", _guard(set_state), methods=["POST"]),
        Route("/_sandbox/lists/{listid}/received", _guard(received), methods=["GET", "POST"]),
    ]


def _set_state(emulator: Emulator, mailing_list: MailingList, email: object, state: object, now: int) -> None:
    store = emulator.store
    if state == UNSUBSCRIBED:
        subscribers.unsubscribe(store, mailing_list, email, now=now)
    elif state == BOUNCED:
        subscribers.bounce(store, mailing_list, email, now=now)
    elif state == DELETED:
        subscribers.delete(mailing_list, email, now=now)
    elif state in (ACTIVE, UNCONFIRMED):
        key, subscriber = subscribers.find(mailing_list, email, errors.INVALID_EMAIL)
        if state == ACTIVE:
            subscribers.reactivate(store, mailing_list, key, subscriber, now)
        else:
            mailing_list.set_state(key, subscriber, UNCONFIRMED, now)
        mailing_list.touch()
    else:
        raise ControlError(400, f"State must be one of {', '.join(STATES)}")


async def _stream(mailing_list: MailingList, rows: list[Any]) -> AsyncIterator[bytes]:
    yield b"["
    for start in range(0, len(rows), CHUNK):
        chunk = [_read_back(mailing_list, key, sub) for key, sub in rows[start : start + CHUNK]]
        piece = orjson.dumps(chunk)[1:-1]
        if piece:
            yield (b"," if start else b"") + piece
    yield b"]"


def _read_back(mailing_list: MailingList, key: str, sub: Subscriber) -> dict[str, Any]:
    detail = render(mailing_list, key, sub, consent=True)
    return {
        name: detail[name] for name in ("EmailAddress", "Name", "State", "CustomFields", "ConsentToTrack")
    }


def _token_routes(emulator: Emulator) -> list[Route]:
    async def expire(request: Request) -> Response:
        """The token named (or every token) answers Code 121 from now on."""
        tokens = emulator.oauth.select((await _body(request)).get("access_token"))
        for token in tokens:
            token.expires_at = min(token.expires_at, emulator.now())
        return json_response(200, {"expired": len(tokens)})

    async def revoke(request: Request) -> Response:
        """The token named (or every token) answers Code 122 and cannot be refreshed."""
        tokens = emulator.oauth.select((await _body(request)).get("access_token"))
        for token in tokens:
            token.revoked = True
        return json_response(200, {"revoked": len(tokens)})

    return [
        Route("/_sandbox/tokens/expire", _guard(expire), methods=["POST"]),
        Route("/_sandbox/tokens/revoke", _guard(revoke), methods=["POST"]),
    ]
