"""One API request as the handlers see it, and the wrapper that authenticates, limits and answers it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from segmentsync.sandbox.campaign_monitor import errors
from segmentsync.sandbox.campaign_monitor.auth import Principal, authenticate, check_ownership
from segmentsync.sandbox.campaign_monitor.errors import ApiError
from segmentsync.sandbox.campaign_monitor.fields import lower_keys
from segmentsync.sandbox.campaign_monitor.limits import rate_limit_headers
from segmentsync.sandbox.campaign_monitor.state import Emulator
from segmentsync.sandbox.campaign_monitor.store import Client, MailingList

API_PREFIX: Final = "/api/v3.3"
JSON: Final = "application/json; charset=utf-8"
NO_BODY: Final = object()  # a 200 with an empty body (update, unsubscribe, delete, ...)

Reply = tuple[int, Any]


@dataclass(slots=True)
class Call:
    emulator: Emulator
    request: Request
    principal: Principal

    def param(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value

    def query(self, name: str) -> str | None:
        """A query parameter; names are matched case-insensitively, as ASP.NET binds them."""
        params = self.request.query_params
        value = params.get(name)
        if value is None:
            for key, candidate in params.items():
                if key.lower() == name:
                    return candidate
        return value

    def queries(self) -> dict[str, str]:
        return {key.lower(): value for key, value in self.request.query_params.items()}

    async def body(self, what: str) -> dict[str, Any]:
        """The JSON object sent, property names lower-cased; CM's 400 when it cannot be read."""
        try:
            body = orjson.loads(await self.request.body())
        except orjson.JSONDecodeError:
            raise errors.not_deserializable(what) from None
        if not isinstance(body, dict):
            raise errors.not_deserializable(what)
        return lower_keys(body)

    def now(self) -> int:
        return int(self.emulator.now())

    def own_client(self, client_id: str) -> Client:
        client = self.emulator.store.clients.get(client_id)
        if client is None:
            raise errors.unauthorized(errors.INVALID_CLIENT_ID)
        check_ownership(self.principal, client_id, errors.INVALID_CLIENT_ID)
        return client

    def own_list(self, list_id: str) -> MailingList:
        """The list, if the caller may see it; else CM's 401 Code 101 (unknown and foreign alike)."""
        mailing_list = self.emulator.store.lists.get(list_id)
        if mailing_list is None:
            raise errors.unauthorized(errors.INVALID_LIST_ID)
        check_ownership(self.principal, mailing_list.client_id, errors.INVALID_LIST_ID)
        return mailing_list


Handler = Callable[[Call], Awaitable[Reply]]


def json_response(
    status: int, body: Any, headers: Mapping[str, str] | None = None, *, pretty: bool = False
) -> Response:
    content = b"" if body is NO_BODY else orjson.dumps(body, option=orjson.OPT_INDENT_2 if pretty else 0)
    return Response(content, status, headers=headers, media_type=JSON)


def _limit(emulator: Emulator, principal: Principal, now: float) -> dict[str, str]:
    """The X-RateLimit-* headers when the request limit is on; a 429 when it is used up."""
    limits = emulator.limits
    if limits.rate_limit is None:
        return {}
    allowed, remaining, reset = emulator.request_windows.hit(
        principal.identity, limit=limits.rate_limit, window=limits.rate_limit_window_seconds, now=now
    )
    headers = rate_limit_headers(limits.rate_limit, remaining, reset)
    if not allowed:
        raise ApiError(429, *errors.RATE_LIMITED, headers=headers)
    return headers


def api_route(
    emulator: Emulator, method: str, path: str, handler: Handler, scopes: frozenset[str] | None
) -> Route:
    """A route under /api/v3.3; ``scopes``: any one of them is needed by an OAuth token (None: any)."""
    template = f"{method} {API_PREFIX}{path}"

    async def endpoint(request: Request) -> Response:
        emulator.count(template)
        pretty = request.query_params.get("pretty", "").lower() == "true"
        headers: dict[str, str] = {}
        try:
            now = emulator.now()
            principal = authenticate(
                request.headers.get("authorization"),
                store=emulator.store,
                oauth=emulator.oauth,
                now=now,
                unknown_key_code=emulator.limits.unknown_api_key_code,
            )
            headers = _limit(emulator, principal, now)
            if not principal.may(scopes):
                raise errors.unauthorized(errors.NO_PERMISSION)
            status, body = await handler(Call(emulator, request, principal))
        except ApiError as error:
            if error.headers is not None:
                headers = error.headers
            return json_response(error.status, error.body(), headers, pretty=pretty)
        return json_response(status, body, headers, pretty=pretty)

    return Route(API_PREFIX + path, endpoint, methods=[method])
