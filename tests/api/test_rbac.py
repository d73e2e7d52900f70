"""The RBAC matrix: every route of the app × every role, checked against the one policy table.

Routes are read from the app itself (``create_app(runtime)``), so routes added later are walked
too. Each route's required actions are read from its ``require(Action.X)`` dependencies; a route
under /api/v1 without one fails this test unless it is listed in ``OPEN_ROUTES``.

Callers: anonymous, a deactivated admin's token (both must get 401), then viewer, contributor and
admin tokens. A role the table refuses must get 403 ``forbidden``; a role it allows must get
anything but 401 or the policy's 403 (typically 404 for the made-up ids or 422 for the empty
body: the policy is checked before the input). Any 500 is a bug in that route.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from segmentsync.api.app import API_PREFIX, create_app
from segmentsync.api.openapi import route_policies
from segmentsync.auth import service
from segmentsync.auth.models import Role
from segmentsync.auth.policy import HELP, POLICY, Action, markdown_table
from segmentsync.db import transaction
from segmentsync.runtime import Runtime

# Routes anyone may call: (method, path). Keep this list short and say why for each.
OPEN_ROUTES = {
    ("POST", f"{API_PREFIX}/session"),  # signing in
    ("GET", f"{API_PREFIX}/openapi.json"),  # the API's description
    ("HEAD", f"{API_PREFIX}/openapi.json"),
}
# Protected routes outside /api/v1 that must follow the table too.
ALSO_WALKED = ("/metrics",)
ROLES = (Role.VIEWER, Role.CONTRIBUTOR, Role.ADMIN)
MADE_UP_ID = "999999"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    actions: frozenset[Action]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def endpoints(app: FastAPI) -> Iterator[tuple[Endpoint, bool]]:
    """(endpoint, whether it is walked): every method of every route of the app."""
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        walked = path.startswith(API_PREFIX + "/") or path in ALSO_WALKED
        if not route.methods:  # a websocket or a mounted app: no policy can be read from it
            yield Endpoint("WEBSOCKET/MOUNT", path, frozenset()), walked
    for (method, path), actions in sorted(route_policies(app).items()):
        yield Endpoint(method, path, actions), path.startswith(API_PREFIX + "/") or path in ALSO_WALKED


def url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", MADE_UP_ID, path)


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime)


@pytest.fixture
def tokens(runtime: Runtime) -> dict[str, str]:
    """An API token per role, and one of a deactivated admin."""
    made: dict[str, str] = {}
    with transaction(runtime.sessions) as session:
        for name, role in [(r.value, r) for r in ROLES] + [("deactivated", Role.ADMIN)]:
            user = service.create_user(session=session, email=f"{name}@example.com", role=role, actor=None)
            _, made[name] = service.create_api_token(
                session=session, user=user, name="rbac", actor=None, now=runtime.clock()
            )
        gone = service.get_user_by_email(session=session, email="deactivated@example.com")
        service.deactivate(session=session, user=gone, actor=None)
    return made


def test_every_api_route_declares_its_policy(app: FastAPI) -> None:
    walked = [endpoint for endpoint, is_walked in endpoints(app) if is_walked]
    assert any(endpoint.path == f"{API_PREFIX}/users" for endpoint in walked)
    unguarded = [
        str(endpoint)
        for endpoint in walked
        if not endpoint.actions and (endpoint.method, endpoint.path) not in OPEN_ROUTES
    ]
    assert unguarded == [], (
        "add Depends(require(Action.X)) to these routes (or, with a reason, to OPEN_ROUTES)"
    )
    assert all(endpoint.method != "WEBSOCKET/MOUNT" for endpoint in walked), "these need their own RBAC test"


def call(client: TestClient, endpoint: Endpoint, token: str | None) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {} if endpoint.method in ("POST", "PUT", "PATCH") else None
    answer = client.request(endpoint.method, url(endpoint.path), headers=headers, json=body)
    try:
        error = answer.json().get("error") or {}
    except (ValueError, AttributeError):  # not a JSON object (metrics text, an empty 204)
        error = {}
    return answer.status_code, error


def verdict(endpoint: Endpoint, caller: str, status: int, error: dict[str, object]) -> str | None:
    """What is wrong with this answer, or None."""
    if status >= 500:
        return f"{status} (a bug in the route: {error.get('message')})"
    if caller in ("anonymous", "deactivated"):
        return None if status == 401 else f"{status}, expected 401"
    role = Role(caller)
    allowed = all(role in POLICY[action] for action in endpoint.actions)
    policy_refusal = status == 403 and error.get("code") == "forbidden"
    details = error.get("details")
    if policy_refusal and isinstance(details, dict):
        policy_refusal = details.get("action") in {action.value for action in endpoint.actions}
    if not allowed:
        return None if policy_refusal else f"{status} {error.get('code')}, expected 403 forbidden"
    if status == 401 or policy_refusal:
        return f"{status} {error.get('code')}, but the table allows {caller}"
    return None


def test_every_route_answers_every_role_as_the_policy_table_says(
    app: FastAPI, tokens: dict[str, str]
) -> None:
    client = TestClient(app, raise_server_exceptions=False)
    guarded = [endpoint for endpoint, walked in endpoints(app) if walked and endpoint.actions]
    assert len(guarded) >= 15
    problems = []
    for endpoint in guarded:
        # Admin last: what an allowed call changes cannot hide a refusal from the others.
        for caller in ("anonymous", "deactivated", *(role.value for role in ROLES)):
            status, error = call(client, endpoint, tokens.get(caller))
            problem = verdict(endpoint, caller, status, error)
            if problem:
                problems.append(f"{endpoint} as {caller}: {problem}")
    assert problems == []


def test_open_routes_need_no_sign_in(app: FastAPI) -> None:
    client = TestClient(app)
    assert client.get(f"{API_PREFIX}/openapi.json").status_code == 200
    assert (
        client.post(f"{API_PREFIX}/session", json={"email": "x@example.com", "password": "y"}).status_code
        == 401
    )


def test_the_table_covers_every_action_and_admins_may_do_everything() -> None:
    assert set(POLICY) == set(Action) == set(HELP)
    assert all(Role.ADMIN in roles for roles in POLICY.values())
    viewer = {action for action, roles in POLICY.items() if Role.VIEWER in roles}
    contributor = {action for action, roles in POLICY.items() if Role.CONTRIBUTOR in roles}
    assert viewer < contributor < set(Action)  # each role adds to the one below


def test_the_docs_show_the_policy_table_as_it_is() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    start = docs.index("<!-- policy-table:start")
    table = docs[docs.index("\n", start) + 1 : docs.index("<!-- policy-table:end -->")]
    assert table == markdown_table(), "paste segmentsync.auth.policy.markdown_table() into docs/api.md"
