"""The ASGI application: platform routes, OAuth, control endpoints, behind the fault injector."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from segmentsync.sandbox.constant_contact import (
    routes_account,
    routes_activities,
    routes_contacts,
    routes_custom_fields,
    routes_lists,
)
from segmentsync.sandbox.constant_contact.control import control_routes
from segmentsync.sandbox.constant_contact.errors import (
    SERVER_ERROR_BODY,
    THROTTLED_BODY,
    method_not_allowed,
    not_found,
)
from segmentsync.sandbox.constant_contact.oauth_routes import authorize_routes, token_routes
from segmentsync.sandbox.constant_contact.routing import REQUIRED_SCOPE, Call, Handler, api_route
from segmentsync.sandbox.constant_contact.state import Emulator
from segmentsync.sandbox.faults import ASGIApp, FaultKind, FaultMiddleware

_JSON = [(b"content-type", b"application/json")]


def fault_response(kind: FaultKind) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The platform's own bodies for injected faults (the 5xx body is our plausible choice)."""
    if kind == "throttled":
        return 429, _JSON, THROTTLED_BODY
    return 500, _JSON, SERVER_ERROR_BODY


_MODULES = (routes_lists, routes_activities, routes_contacts, routes_custom_fields, routes_account)
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


async def _unknown(call: Call) -> Response:
    raise not_found(f"No resource at {call.request.method} {call.request.url.path}.")


def _not_allowed(allowed: list[str]) -> Handler:
    async def handler(call: Call) -> Response:
        raise method_not_allowed(call.request.method, call.request.url.path, allowed)

    return handler


def _options_route(path: str, allowed: list[str]) -> Route:
    """OPTIONS (a CORS preflight carries no token): 204 with the methods the path answers."""
    header = ", ".join([*allowed, "OPTIONS"])

    async def endpoint(request: Request) -> Response:
        return Response(status_code=204, headers={"Allow": header})

    return Route(path, endpoint, methods=["OPTIONS"])


def api_operations() -> list[tuple[str, str]]:
    """Every emulated ``/v3`` operation as ``(METHOD, path template)``."""
    return [(method, path) for module in _MODULES for method, path, _ in module.ROUTES]


def build_routes(emulator: Emulator) -> list[BaseRoute]:
    operations: list[BaseRoute] = []
    allowed: dict[str, list[str]] = {}
    for module in _MODULES:
        scope = getattr(module, "SCOPE", REQUIRED_SCOPE)  # the scope the module's operations need
        for method, path, handler in module.ROUTES:
            operations.append(api_route(emulator, method, path, handler, scope))
            allowed.setdefault(path, []).append(method)
    # an emulated path with another method: authenticate first, then 405 naming the allowed ones;
    # fixed paths first (GET /v3/contacts/sign_up_form is not GET /v3/contacts/{contact_id})
    fixed: list[BaseRoute] = []
    templated: list[BaseRoute] = []
    for path, methods in allowed.items():
        refuse = _not_allowed(methods)
        routes = templated if "{" in path else fixed
        routes += [api_route(emulator, m, path, refuse) for m in _METHODS if m not in methods]
        routes.append(_options_route(path, methods))
    routes = fixed + operations + templated
    routes += authorize_routes(emulator) + token_routes(emulator) + control_routes(emulator)
    # any other /v3 path: authenticate first (as the gateway does), then 404
    for method in _METHODS:
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
