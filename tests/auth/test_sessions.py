"""Server-side sessions: signing out ends a session for every copy of its cookie; a password
change, a role change and deactivation end the user's sessions; a user sees and ends their own
("sign out everywhere"), an admin anyone's; idle and absolute lifetimes come from settings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from segmentsync.auth import sessions
from segmentsync.auth.models import BrowserSession, Role
from segmentsync.runtime import Runtime

from .conftest import PASSWORD, MakeUser, Person

SESSION, ME = "/api/v1/session", "/api/v1/me"


def signed_in(
    app: FastAPI, email: str, password: str = PASSWORD, agent: str = "testclient"
) -> tuple[TestClient, str]:
    client = TestClient(app, headers={"User-Agent": agent})
    answer = client.post(SESSION, json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return client, answer.json()["csrf_token"]


def copy_of(app: FastAPI, client: TestClient) -> TestClient:
    """Another client holding the same cookie (copied by an attacker, or a second tab)."""
    return holding(app, dict(client.cookies.items()))


def holding(app: FastAPI, cookies: dict[str, str]) -> TestClient:
    thief = TestClient(app)
    thief.cookies.update(cookies)
    return thief


def test_a_cookie_copied_before_signing_out_no_longer_works(app: FastAPI, admin: Person) -> None:
    client, csrf = signed_in(app, admin.email)
    copied = dict(client.cookies.items())
    assert holding(app, copied).get(ME).status_code == 200
    assert client.delete(SESSION, headers={"X-CSRF-Token": csrf}).status_code == 204
    answer = holding(app, copied).get(ME)
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "session_expired")
    made = holding(app, copied).post(
        "/api/v1/me/tokens", json={"name": "outlives"}, headers={"X-CSRF-Token": csrf}
    )
    assert made.status_code == 401  # no API token minted from an ended session


def test_signing_out_of_the_pages_ends_the_session_too(app: FastAPI, admin: Person) -> None:
    client, csrf = signed_in(app, admin.email)
    thief = copy_of(app, client)
    assert client.post("/sign-out", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert thief.get(ME).status_code == 401
    assert thief.get("/account", follow_redirects=False).status_code in (302, 303, 401)


def test_a_password_set_by_an_admin_a_role_change_and_deactivation_end_all_sessions(
    app: FastAPI, admin: Person, make_user: MakeUser
) -> None:
    carla = make_user("carla@example.com", Role.CONTRIBUTOR, password=PASSWORD)
    users = f"/api/v1/users/{carla.id}"
    changes = [
        ("PUT", f"{users}/password", {"new_password": "another long password"}),
        ("PATCH", users, {"role": "viewer"}),
        ("PATCH", users, {"is_active": False}),
    ]
    password = PASSWORD
    for method, url, body in changes:
        browser, _ = signed_in(app, carla.email, password)
        cookies = dict(browser.cookies.items())
        assert TestClient(app).request(method, url, json=body, headers=admin.auth).status_code in (200, 204)
        assert holding(app, cookies).get(ME).status_code == 401, f"{method} {url} {body}"
        password = "another long password"
    TestClient(app).patch(users, json={"is_active": True}, headers=admin.auth)
    assert holding(app, cookies).get(ME).status_code == 401  # reactivation brings no session back


def test_you_see_your_sessions_and_can_sign_out_everywhere(app: FastAPI, admin: Person) -> None:
    laptop, csrf = signed_in(app, admin.email, agent="Laptop browser")
    phone, _ = signed_in(app, admin.email, agent="Phone browser")
    listed = laptop.get("/api/v1/me/sessions").json()
    assert listed["total"] == 2
    assert {(s["user_agent"], s["current"]) for s in listed["items"]} == {
        ("Laptop browser", True),
        ("Phone browser", False),
    }
    assert all(s["ip"] == "testclient" for s in listed["items"])
    phone_id = next(s["id"] for s in listed["items"] if not s["current"])
    assert laptop.delete(f"/api/v1/me/sessions/{phone_id}", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert phone.get(ME).status_code == 401
    assert laptop.get(ME).status_code == 200
    tablet, _ = signed_in(app, admin.email, agent="Tablet")
    assert laptop.delete("/api/v1/me/sessions", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert laptop.get(ME).status_code == 401
    assert tablet.get(ME).status_code == 401


def test_nobody_ends_another_users_session_by_its_id_but_an_admin(
    app: FastAPI, admin: Person, make_user: MakeUser, runtime: Runtime
) -> None:
    carla = make_user("carla@example.com", Role.CONTRIBUTOR, password=PASSWORD)
    carla_browser, carla_csrf = signed_in(app, carla.email)
    admin_browser, _ = signed_in(app, admin.email)
    admins_session = next(iter(admin_browser.get("/api/v1/me/sessions").json()["items"]))["id"]
    refused = carla_browser.delete(
        f"/api/v1/me/sessions/{admins_session}", headers={"X-CSRF-Token": carla_csrf}
    )
    assert refused.status_code == 404
    assert admin_browser.get(ME).status_code == 200
    assert TestClient(app).get(f"/api/v1/users/{carla.id}/sessions", headers=carla.auth).status_code == 403
    listed = TestClient(app).get(f"/api/v1/users/{carla.id}/sessions", headers=admin.auth).json()
    assert listed["total"] == 1
    ended = TestClient(app).delete(f"/api/v1/users/{carla.id}/sessions", headers=admin.auth)
    assert ended.status_code == 204
    assert carla_browser.get(ME).status_code == 401
    with runtime.sessions() as session:  # the cookie's id is never stored, only its hash
        stored = session.scalars(select(BrowserSession.token_hash)).all()
    assert all(len(value) == 64 for value in stored)


@pytest.mark.parametrize("kind", ["idle", "absolute"])
def test_sessions_end_when_idle_or_too_old(app: FastAPI, admin: Person, runtime: Runtime, kind: str) -> None:
    runtime.settings.session_idle_minutes, runtime.settings.session_max_hours = 30, 2
    client, _ = signed_in(app, admin.email)
    start = runtime.clock()
    steps = (
        [timedelta(minutes=29)] * 4 if kind == "absolute" else [timedelta(minutes=29), timedelta(minutes=60)]
    )
    now = start
    for step in steps[:-1]:  # used often enough: not idle
        now += step
        runtime.clock = lambda now=now: now
        assert client.get(ME).status_code == 200
    now += steps[-1] if kind == "idle" else timedelta(hours=2) - (now - start) + timedelta(minutes=1)
    runtime.clock = lambda: now
    answer = client.get(ME)
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "session_expired")


def test_a_cookie_with_an_unknown_or_odd_session_id_signs_nobody_in(runtime: Runtime) -> None:
    lifetimes = sessions.Lifetimes.of(runtime.settings)
    with runtime.sessions() as session:
        for token in ("", "x" * 10_000, 42, None, "not-a-session"):
            assert (
                sessions.current(session=session, token=token, now=runtime.clock(), lifetimes=lifetimes)
                is None
            )
