"""The Campaign Monitor emulator as one ASGI app: API routes, OAuth, control, fault injection."""

from __future__ import annotations

from typing import Final

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from segmentsync.sandbox.campaign_monitor import control, errors, oauth, routes_lists, routes_subscribers
from segmentsync.sandbox.campaign_monitor.call import API_PREFIX, JSON, api_route, json_response
from segmentsync.sandbox.campaign_monitor.state import Emulator
from segmentsync.sandbox.faults import ASGIApp, FaultKind, FaultMiddleware

_FAULT_BODIES: Final = {
    "server_error": (500, orjson.dumps({"Code": errors.SERVER_ERROR[0], "Message": errors.SERVER_ERROR[1]})),
    "throttled": (429, orjson.dumps({"Code": errors.RATE_LIMITED[0], "Message": errors.RATE_LIMITED[1]})),
}


def fault_responder(kind: FaultKind) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """CM's own bodies for injected faults."""
    status, body = _FAULT_BODIES[kind]
    return status, [(b"content-type", JSON.encode())], body


RETIRED_VERSIONS: Final = ("v3", "v3.1", "v3.2")


def _retired(emulator: Emulator) -> list[BaseRoute]:
    """Older API versions (createsend-node's default base is ``/api/v3``): 410 naming the one served.

    The reference does not say they behave like v3.3 (v3.2 made ConsentToTrack mandatory, v3.3
    added ListJoinedDate and mobile numbers), so they are not served with v3.3's behaviour.
    """

    def route(version: str) -> Route:
        message = f"API version {version} is not available: use {API_PREFIX} (https://api.createsend.com{API_PREFIX})."

        async def endpoint(request: Request) -> Response:
            emulator.count(f"{request.method} /api/{version} (retired version)")
            return json_response(410, {"Code": 410, "Message": message})

        return Route(
            f"/api/{version}/{{rest:path}}", endpoint, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]
        )

    return [route(version) for version in RETIRED_VERSIONS]


def _routes(emulator: Emulator) -> list[BaseRoute]:
    api: list[BaseRoute] = [
        api_route(emulator, method, path, handler, scopes)
        for method, path, handler, scopes in (*routes_lists.ROUTES, *routes_subscribers.ROUTES)
    ]
    auth: list[BaseRoute] = [oauth.authorize_page(emulator), oauth.decide(emulator), oauth.token(emulator)]
    return [*api, *_retired(emulator), *auth, *control.routes(emulator)]


def _http_errors(emulator: Emulator) -> dict[int, object]:
    async def not_found(request: Request, exc: Exception) -> Response:
        emulator.count(f"{request.method} (no such route)")
        return json_response(404, {"Code": errors.NOT_FOUND[0], "Message": errors.NOT_FOUND[1]})

    async def not_allowed(request: Request, exc: Exception) -> Response:
        emulator.count(f"{request.method} (method not allowed)")
        message = f"The requested resource does not support http method '{request.method}'."
        headers = exc.headers if isinstance(exc, HTTPException) else None
        return json_response(405, {"Code": 405, "Message": message}, headers)

    async def server_error(request: Request, exc: Exception) -> Response:
        return json_response(500, {"Code": errors.SERVER_ERROR[0], "Message": errors.SERVER_ERROR[1]})

    return {404: not_found, 405: not_allowed, 500: server_error}


def create_app() -> ASGIApp:
    """A fresh emulator with no clients; ``POST /_sandbox/clients`` creates one."""
    emulator = Emulator()
    app = Starlette(routes=_routes(emulator), exception_handlers=_http_errors(emulator))  # type: ignore[arg-type]  # Starlette's handler type is a union mypy cannot match
    app.state.emulator = emulator
    return FaultMiddleware(app, emulator.faults, fault_responder)
