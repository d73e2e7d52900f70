"""The OpenAPI document, with each operation's policy: who may call it, read from the route itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import iter_route_contexts

from segmentsync.api.deps import Require
from segmentsync.auth.models import Role
from segmentsync.auth.policy import POLICY, Action

SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "an API token: `segmentsync users token EMAIL`, or Account > API tokens",
    },
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "segmentsync_session",
        "description": "a signed-in browser (changes also need the X-CSRF-Token header)",
    },
}


def required_actions(dependant: Dependant) -> Iterator[Action]:
    """The actions a route's ``require(...)`` dependencies demand, at any depth."""
    for sub in dependant.dependencies:
        if isinstance(sub.call, Require):
            yield sub.call.action
        yield from required_actions(sub)


def route_policies(app: FastAPI) -> dict[tuple[str, str], frozenset[Action]]:
    """(method, path template) → the actions each route requires (empty: open to anyone)."""
    policies: dict[tuple[str, str], frozenset[Action]] = {}
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        actions = frozenset(required_actions(dependant)) if dependant is not None else frozenset()
        for method in route.methods or ():
            policies[(method, route.path or "")] = actions
    return policies


def _who(actions: frozenset[Action]) -> str:
    roles = [role.value for role in Role if all(role in POLICY[action] for action in actions)]
    return ", ".join(roles)


def install(app: FastAPI) -> None:
    """Annotate every operation with ``x-required-actions``, a sentence saying who may call it, and
    the ways to authenticate (an API token as a bearer token, or a browser's session cookie)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        policies = route_policies(app)
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                actions = policies.get((method.upper(), path))
                if actions is None:
                    continue
                operation["x-required-actions"] = sorted(action.value for action in actions)
                operation["security"] = [{name: []} for name in SECURITY_SCHEMES] if actions else []
                who = (
                    f"Requires {', '.join(sorted(actions))}: {_who(actions)}."
                    if actions
                    else "Open to anyone."
                )
                operation["description"] = f"{operation.get('description', '')}\n\n{who}".strip()
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise
