"""The wrapper every ``/v3`` endpoint goes through: count, authenticate, limit, advance activities."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segmentsync.sandbox.constant_contact import errors
from segmentsync.sandbox.constant_contact.account import Account
from segmentsync.sandbox.constant_contact.activities import Activity, Work
from segmentsync.sandbox.constant_contact.errors import PlatformError
from segmentsync.sandbox.constant_contact.oauth import Grant
from segmentsync.sandbox.constant_contact.paging import query_params
from segmentsync.sandbox.constant_contact.state import Emulator
from segmentsync.sandbox.constant_contact.store import new_id

REQUIRED_SCOPE = "contact_data"  # contacts, lists, custom fields, bulk activities (account: its own)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers=headers, media_type="application/json")


@dataclass(slots=True)
class Call:
    """One authenticated API request, with the account its token belongs to."""

    request: Request
    emulator: Emulator
    account: Account
    now: float

    @property
    def params(self) -> dict[str, str]:
        return query_params(self.request.query_params)

    def path_param(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value

    async def json_body(self) -> bytes:
        """The raw body of a JSON request; 415 without a JSON content type."""
        content_type = self.request.headers.get("content-type", "")
        if not content_type.lower().startswith("application/json"):
            raise errors.unsupported_media_type()
        return await self.request.body()

    async def json(self) -> Any:
        """The JSON body; 415 without a JSON content type, 400 when it does not parse."""
        body = await self.json_body()
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request("The request body is not valid JSON.") from exc

    async def json_object(self) -> dict[str, Any]:
        data = await self.json()
        if not isinstance(data, dict):
            raise errors.bad_request("The request body must be a JSON object.")
        return data

    def queue(self, kind: str, items: int, work: Work, counts: dict[str, int]) -> Activity:
        """Queue a bulk activity; 429 when the account already has too many queued."""
        cap = self.emulator.limits.max_queued_activities
        if cap is not None and self.account.activities.queued() >= cap:
            self.emulator.stats.count_limited("queue_full")
            raise PlatformError(429, errors.QUEUE_FULL_BODY)
        activity = Activity(new_id(), kind, items, work, counts)
        self.account.activities.add(activity, self.emulator.limits.rows_per_second)
        return activity


Handler = Callable[[Call], Awaitable[Response]]


def api_route(
    emulator: Emulator, method: str, path: str, handler: Handler, scope: str = REQUIRED_SCOPE
) -> Route:
    route = f"{method} {path}"

    async def endpoint(request: Request) -> Response:
        try:
            response = await _admit_and_handle(emulator, request, handler, scope)
        except PlatformError as error:
            response = error.response()
        emulator.stats.record(route, response.status_code)
        return response

    return Route(path, endpoint, methods=[method], name=route)


async def _admit_and_handle(emulator: Emulator, request: Request, handler: Handler, scope: str) -> Response:
    grant = _authenticate(emulator, request, scope)
    _limit(emulator, grant.client_id)
    account = emulator.accounts[grant.account_id]
    now = time.time()
    account.activities.advance(now)
    return await handler(Call(request, emulator, account, now))


def _authenticate(emulator: Emulator, request: Request, scope: str) -> Grant:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    grant = emulator.tokens.check(token.strip()) if scheme.lower() == "bearer" else None
    if grant is None or grant.account_id not in emulator.accounts:
        emulator.stats.count_limited("unauthorized")
        raise errors.unauthorized()
    if scope not in grant.scopes:
        raise errors.forbidden(f"The access token lacks the '{scope}' scope this request needs.")
    return grant


def _limit(emulator: Emulator, client_id: str) -> None:
    """Daily quota first (a spent quota answers quota_exceeded), then the per-second rate."""
    limits, limiter = emulator.limits, emulator.limiter
    if not limiter.quota_left(client_id, limits.daily_quota):
        emulator.stats.count_limited("quota_exceeded")
        raise PlatformError(429, errors.QUOTA_BODY)
    if not limiter.allow_rate(client_id, limits.requests_per_second):
        emulator.stats.count_limited("throttled")
        raise PlatformError(429, errors.THROTTLED_BODY)
    limiter.count_day(client_id)
