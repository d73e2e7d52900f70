"""The ASGI application: platform routes, OAuth, control endpoints, behind the fault injector."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from segmentsync.sandbox.constant_contact import (
    routes_activities,
    routes_contacts,
    routes_custom_fields,
    routes_lists,
)
from segmentsync.sandbox.constant_contact.control import control_routes
from segmentsync.sandbox.constant_contact.errors import SERVER_ERROR_BODY, THROTTLED_BODY, not_found
from segmentsync.sandbox.constant_contact.oauth_routes import authorize_routes, token_routes
from segmentsync.sandbox.constant_contact.routing import Call, api_route
from segmentsync.sandbox.constant_contact.state import Emulator
from segmentsync.sandbox.faults import ASGIApp, FaultKind, FaultMiddleware

_JSON = [(b"content-type", b"application/json")]


def fault_response(kind: FaultKind) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The platform's own bodies for injected faults (the 5xx body is our plausible choice)."""
    if kind == "throttled":
        return 429, _JSON, THROTTLED_BODY
    return 500, _JSON, SERVER_ERROR_BODY


async def _unknown(call: Call) -> Response:
    raise not_found(f"No resource at {call.request.method} {call.request.url.path}.")


def build_routes(emulator: Emulator) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for module in (routes_lists, routes_activities, routes_contacts, routes_custom_fields):
        routes += [api_route(emulator, method, path, handler) for method, path, handler in module.ROUTES]
    routes += authorize_routes(emulator) + token_routes(emulator) + control_routes(emulator)
    # any other /v3 path: authenticate first (as the gateway does), then 404
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        routes.append(api_route(emulator, method, "/v3/{rest:path}", _unknown))
    return routes


def create_app(emulator: Emulator | None = None) -> ASGIApp:
    """The Constant Contact emulator (one in-memory platform per app)."""
    emulator = emulator or Emulator()
    starlette = Starlette(routes=build_routes(emulator))

    async def health(request: Request) -> Response:
        return Response(b'{"ok":true}', media_type="application/json")

    starlette.router.routes.append(Route("/_sandbox/health", health, methods=["GET"]))
    return FaultMiddleware(starlette, emulator.faults, fault_response)
