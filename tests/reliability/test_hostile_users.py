"""Hostile users: forged CSRF tokens (API and pages), OAuth ``state`` that is forged or someone
else's, objects of other users (a contributor cancelling a run of an admin-only export, a viewer
changing anything), open redirects after sign-in. Every attempt is refused and changes nothing."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from exports.world import Person, World
from segmentsync.api.app import create_app
from segmentsync.auth import service as auth_service
from segmentsync.auth.models import User
from segmentsync.connections.models import OAuthState
from segmentsync.db import transaction
from segmentsync.exports.models import Run, RunStatus

from .scenario import ON_SQLITE, load_run, make_export, start_run

API = "/api/v1"
PASSWORD = "correct horse battery staple"
pytestmark = ON_SQLITE  # object-level rules do not depend on the store


@pytest.fixture
def app(world: World) -> FastAPI:
    for person in (world.admin, world.contributor, world.viewer):
        with transaction(world.runtime.sessions) as session:
            user = session.get(User, person.id)
            assert user is not None
            auth_service.set_password(session=session, user=user, new_password=PASSWORD, actor=None)
    return create_app(world.runtime)


def signed_in(app: FastAPI, person: Person) -> tuple[TestClient, str]:
    """A browser signed in as ``person`` (session cookie) and its CSRF token."""
    client = TestClient(app, follow_redirects=False)
    answer = client.post(f"{API}/session", json={"email": person.email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return client, answer.json()["csrf_token"]


def runs_of(world: World) -> list[tuple[int, RunStatus]]:
    with world.runtime.sessions() as session:
        return [(r.id, r.status) for r in session.scalars(sa.select(Run).order_by(Run.id))]


# ---------------------------------------------------------------- CSRF


def test_cookie_changes_without_the_sessions_csrf_token_are_refused(world: World, app: FastAPI) -> None:
    export_id = make_export(world, "campaign_monitor")
    admin, csrf = signed_in(app, world.admin)
    _, contributors_csrf = signed_in(app, world.contributor)
    start = f"{API}/exports/{export_id}/runs"
    forged = [
        admin.post(start, json={}),
        admin.post(start, json={}, headers={"X-CSRF-Token": ""}),
        admin.post(start, json={}, headers={"X-CSRF-Token": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}),
        admin.post(start, json={}, headers={"X-CSRF-Token": contributors_csrf}),  # another session's
        admin.post(start, data={"csrf_token": "forged"}),  # a cross-site form
        admin.post(f"/exports/{export_id}/run", data={}),  # the page's form, no token
        admin.post(f"/exports/{export_id}/run", data={"csrf_token": contributors_csrf}),
        admin.post("/exports/run-all", data={"csrf_token": "x" * 43}),
    ]
    for answer in forged:
        assert answer.status_code == 403, (answer.request.url, answer.status_code, answer.text[:200])
        assert "csrf" in answer.text
    assert runs_of(world) == []
    assert admin.get(f"/exports/{export_id}/run").status_code in (404, 405)  # no change by GET
    assert admin.post(start, json={}, headers={"X-CSRF-Token": csrf}).status_code == 201
    assert len(runs_of(world)) == 1


def test_a_session_cookie_is_not_sent_cross_site(world: World, app: FastAPI) -> None:
    client = TestClient(app)
    answer = client.post(f"{API}/session", json={"email": world.admin.email, "password": PASSWORD})
    cookie = answer.headers["set-cookie"].lower()
    assert "samesite=lax" in cookie
    assert "httponly" in cookie


# ---------------------------------------------------------------- OAuth state


@pytest.fixture
def oauth_ready(world: World) -> None:
    """Our OAuth application registered with the Campaign Monitor emulator."""
    registered = httpx.post(
        f"{world.sandbox.campaign_monitor_url}/_sandbox/oauth_apps",
        json={"name": "segmentsync", "redirect_uri": "http://testserver/api/v1/connections/oauth/callback"},
        timeout=10,
    ).json()
    settings = world.runtime.settings
    settings.base_url = "http://testserver"
    settings.campaign_monitor_client_id = registered["client_id"]
    settings.campaign_monitor_client_secret = SecretStr(registered["client_secret"])


def test_oauth_callbacks_with_a_state_not_ours_are_refused(
    world: World, app: FastAPI, oauth_ready: None
) -> None:
    with transaction(world.runtime.sessions) as session:
        user = auth_service.create_user(
            session=session, email="otto@example.com", role=world.admin.role, actor=None
        )
        _, token = auth_service.create_api_token(
            session=session, user=user, name="t", actor=None, now=world.runtime.clock()
        )
        other_admin = Person(user.id, user.email, user.role, token)
    client = TestClient(app, follow_redirects=False)
    draft = {"type": "campaign_monitor", "name": "Via OAuth", "consent": True}
    started = client.post(f"{API}/connections/oauth/start", json=draft, headers=world.admin.auth)
    assert started.status_code == 200, started.text
    state = started.json()["state"]
    callback = f"{API}/connections/oauth/callback"
    attempts = {
        "forged": client.get(callback, params={"state": "forged-" + state, "code": "c"}, headers=world.admin.auth),
        "empty": client.get(callback, params={"state": "", "code": "c"}, headers=world.admin.auth),
        "missing": client.get(callback, params={"code": "c"}, headers=world.admin.auth),
        "another admin's": client.get(callback, params={"state": state, "code": "c"}, headers=other_admin.auth),
        "a contributor": client.get(callback, params={"state": state, "code": "c"}, headers=world.contributor.auth),
    }  # fmt: skip
    for what, answer in attempts.items():
        assert answer.status_code == 403, (what, answer.status_code, answer.text)
        assert answer.json()["error"]["code"] in ("oauth_state", "forbidden"), what
    with world.runtime.sessions() as session:
        assert session.get(OAuthState, state) is not None  # still the starter's to finish
    listed = client.get(f"{API}/connections", headers=world.admin.auth).json()["items"]
    assert "Via OAuth" not in {c["name"] for c in listed}


# ---------------------------------------------------------------- other users' objects


@pytest.fixture
def admins_run(world: World) -> tuple[int, int]:
    """An export on the administrators-only connection, with a queued run: (export id, run id)."""
    export_id = make_export(
        world, "campaign_monitor", name="Admins only", connection_id=world.cm_private.connection_id,
        list_id=world.cm_private.list_id,
    )  # fmt: skip
    return export_id, start_run(world, export_id)


def test_a_contributor_cannot_touch_runs_or_exports_of_an_admin_only_connection(
    world: World, app: FastAPI, admins_run: tuple[int, int]
) -> None:
    export_id, run_id = admins_run
    client = TestClient(app, headers=world.contributor.auth)
    assert client.get(f"{API}/runs/{run_id}").status_code == 200  # viewing is allowed
    refused = {
        "cancel": client.post(f"{API}/runs/{run_id}/cancel"),
        "confirm": client.post(f"{API}/runs/{run_id}/confirm"),
        "run": client.post(f"{API}/exports/{export_id}/runs", json={"dry_run": True}),
        "edit": client.patch(f"{API}/exports/{export_id}", json={"name": "mine now"}),
        "detach": client.post(f"{API}/exports/{export_id}/detach"),
        "remove": client.delete(f"{API}/exports/{export_id}"),
        "connection settings": client.get(f"{API}/connections/{world.cm_private.connection_id}"),
        "lists": client.get(f"{API}/connections/{world.cm_private.connection_id}/lists"),
    }
    for what, answer in refused.items():
        assert answer.status_code in (403, 404), (what, answer.status_code, answer.text)
    assert load_run(world.runtime, run_id).status is RunStatus.QUEUED
    assert client.get(f"{API}/exports/{export_id}").json()["name"] == "Admins only"


def test_a_viewer_changes_nothing(world: World, app: FastAPI, admins_run: tuple[int, int]) -> None:
    shared = make_export(world, "constant_contact", name="Shared")
    run_id = admins_run[1]
    segment = world.segments["PL"]
    client = TestClient(app, headers=world.viewer.auth)
    attempts = [
        client.post(f"{API}/exports/{shared}/runs", json={}),
        client.post(f"{API}/runs/{run_id}/cancel"),
        client.post(f"{API}/runs/{run_id}/confirm"),
        client.patch(f"{API}/exports/{shared}", json={"name": "x"}),
        client.delete(f"{API}/exports/{shared}"),
        client.post(f"{API}/exports/{shared}/duplicate"),
        client.post(f"{API}/exports/{shared}/detach"),
        client.post(f"{API}/exports/run-all"),
        client.post(f"{API}/exports", json={"name": "x"}),
        client.post(f"{API}/segments", json={"name": "x", "rules": {"items": []}}),
        client.patch(f"{API}/segments/{segment}", json={"name": "x"}),
        client.delete(f"{API}/segments/{segment}"),
        client.post(f"{API}/segments/{segment}/refresh"),
        client.post(f"{API}/connections", json={"type": "campaign_monitor", "name": "x", "consent": True}),
        client.get(f"{API}/connections/{world.cm.connection_id}"),
        client.delete(f"{API}/connections/{world.cm.connection_id}"),
        client.put(f"{API}/system/schedule", json={"enabled": True}),
        client.post(f"{API}/system/refreshes"),
        client.post(f"{API}/users", json={"email": "new@example.com", "role": "admin"}),
        client.patch(f"{API}/users/{world.viewer.id}", json={"role": "admin"}),  # promote oneself
        client.post(f"{API}/users/{world.admin.id}/tokens", json={"name": "mine"}),
        client.get(f"{API}/audit"),
    ]
    for answer in attempts:
        assert answer.status_code == 403, (answer.request.method, answer.request.url, answer.status_code)
    assert client.get(f"{API}/me").json()["user"]["role"] == "viewer"
    assert [status for _, status in runs_of(world)] == [RunStatus.QUEUED]
    assert client.get(f"{API}/exports/{shared}").json()["name"] == "Shared"


def test_unknown_and_absurd_ids_are_not_found_or_invalid(world: World, app: FastAPI) -> None:
    client = TestClient(app, headers=world.admin.auth)
    for path in ("runs/999999/cancel", "runs/-1/cancel", "runs/0/confirm", f"runs/{10**40}/cancel"):
        answer = client.post(f"{API}/{path}")
        assert answer.status_code in (404, 422), (path, answer.status_code)
    for path in ("runs/1%20OR%201=1", "runs/1;DROP", "exports/..%2F..%2Fetc", "runs/1e3"):
        assert client.get(f"{API}/{path}").status_code in (404, 422), path


# ---------------------------------------------------------------- open redirects


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "/\t/evil.example",
        "/%2F%2Fevil.example",
        "javascript:alert(1)",
        "\\\\evil.example",
        " //evil.example",
    ],
)
def test_signing_in_never_redirects_to_another_site(world: World, app: FastAPI, target: str) -> None:
    client = TestClient(app, follow_redirects=False)
    form = client.get("/sign-in")
    csrf = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post(
        "/sign-in",
        data={"email": world.admin.email, "password": PASSWORD, "next": target, "csrf_token": csrf},
    )
    assert answer.status_code in (302, 303), answer.text[:200]
    location = answer.headers["location"]
    # what a browser does: drop tabs and newlines, then resolve against the page
    resolved = urljoin("http://testserver/sign-in", location.replace("\t", "").replace("\n", ""))
    assert urlsplit(resolved).netloc == "testserver", (target, location)
