"""Signing in for the web: session cookie, CSRF token, throttling, sign-out, password changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from segmentsync.auth import audit, signin
from segmentsync.auth.models import AuditEntry, Role, User
from segmentsync.auth.policy import POLICY
from segmentsync.db import transaction
from segmentsync.runtime import Runtime

from .conftest import PASSWORD, MakeUser, Person

SESSION = "/api/v1/session"


def sign_in(client: TestClient, email: str, password: str) -> tuple[int, dict[str, object]]:
    answer = client.post(SESSION, json={"email": email, "password": password})
    return answer.status_code, answer.json()


def audit_actions(runtime: Runtime) -> list[tuple[str, str, str | None]]:
    with transaction(runtime.sessions) as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(row.action, row.actor_label, row.ip) for row in rows]


def test_signing_in_sets_a_session_with_a_csrf_token(
    client: TestClient, admin: Person, runtime: Runtime
) -> None:
    status, body = sign_in(client, "ADMIN@example.com ", PASSWORD)  # any case, stray spaces
    assert status == 200
    assert body["user"]["email"] == admin.email  # type: ignore[index]
    me = client.get("/api/v1/me").json()
    assert me["authenticated_by"] == "session"
    assert me["csrf_token"] == body["csrf_token"]
    assert me["permissions"] == [action.value for action, roles in POLICY.items() if Role.ADMIN in roles]
    assert me["user"]["last_login_at"] is not None
    assert ("auth.sign_in", admin.email, "testclient") in audit_actions(runtime)


def test_each_sign_in_gets_a_fresh_csrf_token(client: TestClient, admin: Person) -> None:
    first = sign_in(client, admin.email, PASSWORD)[1]["csrf_token"]
    second = sign_in(client, admin.email, PASSWORD)[1]["csrf_token"]
    assert first != second
    assert client.get("/api/v1/me").json()["csrf_token"] == second


@pytest.mark.parametrize("email", ["admin@example.com", "nobody@example.com"])
def test_a_wrong_email_or_password_says_neither_which_and_is_audited(
    client: TestClient, admin: Person, runtime: Runtime, email: str
) -> None:
    status, body = sign_in(client, email, "wrong password")
    assert status == 401
    assert body["error"] == {  # type: ignore[comparison-overlap]
        "status": 401,
        "code": "wrong_credentials",
        "message": "wrong email or password",
        "field": "password",
    }
    assert ("auth.sign_in_failed", email, "testclient") in audit_actions(runtime)
    assert client.get("/api/v1/me").status_code == 401


def test_a_user_without_a_password_cannot_sign_in(client: TestClient, viewer: Person) -> None:
    assert sign_in(client, viewer.email, "")[0] == 401


def test_a_deactivated_user_cannot_sign_in(client: TestClient, make_user: MakeUser) -> None:
    make_user("extra-admin@example.com", Role.ADMIN)
    person = make_user("gone@example.com", Role.ADMIN, password=PASSWORD)
    admin_client = TestClient(client.app, headers={"Authorization": f"Bearer {person.token}"})
    assert admin_client.patch(f"/api/v1/users/{person.id}", json={"is_active": False}).status_code == 200
    status, body = sign_in(client, person.email, PASSWORD)
    assert (status, body["error"]["code"]) == (403, "deactivated")  # type: ignore[index]


def test_cookie_requests_that_change_things_need_the_csrf_token(browser: tuple[TestClient, str]) -> None:
    client, csrf = browser
    body = {"name": "laptop"}
    missing = client.post("/api/v1/me/tokens", json=body)
    wrong = client.post("/api/v1/me/tokens", json=body, headers={"X-CSRF-Token": "not-it"})
    for answer in (missing, wrong):
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "csrf"
    assert client.post("/api/v1/me/tokens", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
    assert client.get("/api/v1/me/tokens").status_code == 200  # reading needs no token


def test_api_tokens_need_no_csrf_token(client: TestClient, admin: Person) -> None:
    answer = client.post("/api/v1/me/tokens", json={"name": "script"}, headers=admin.auth)
    assert answer.status_code == 201
    me = client.get("/api/v1/me", headers=admin.auth).json()
    assert (me["authenticated_by"], me["csrf_token"]) == ("token", None)


def test_signing_out_ends_the_session(browser: tuple[TestClient, str], runtime: Runtime) -> None:
    client, csrf = browser
    assert client.delete(SESSION).status_code == 403  # CSRF applies to signing out too
    assert client.delete(SESSION, headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/me").status_code == 401
    assert "auth.sign_out" in [action for action, _, _ in audit_actions(runtime)]


def test_changing_the_password_signs_out_other_browsers(
    app: FastAPI, browser: tuple[TestClient, str], admin: Person
) -> None:
    client, csrf = browser
    other = TestClient(app)
    assert sign_in(other, admin.email, PASSWORD)[0] == 200
    change = {"current_password": "not it", "new_password": "a new long password"}
    wrong = client.put("/api/v1/me/password", json=change, headers={"X-CSRF-Token": csrf})
    assert (wrong.status_code, wrong.json()["error"]["field"]) == (422, "current_password")
    change["current_password"] = PASSWORD
    assert client.put("/api/v1/me/password", json=change, headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/me").status_code == 200  # this browser stays signed in
    expired = other.get("/api/v1/me")
    assert (expired.status_code, expired.json()["error"]["code"]) == (401, "session_expired")
    assert sign_in(TestClient(app), admin.email, PASSWORD)[0] == 401
    assert sign_in(TestClient(app), admin.email, "a new long password")[0] == 200


def test_a_too_short_new_password_is_refused(browser: tuple[TestClient, str]) -> None:
    client, csrf = browser
    change = {"current_password": PASSWORD, "new_password": "short"}
    answer = client.put("/api/v1/me/password", json=change, headers={"X-CSRF-Token": csrf})
    assert (answer.status_code, answer.json()["error"]["field"]) == (422, "new_password")


def test_failed_sign_ins_are_throttled_per_email_and_address(
    app: FastAPI, admin: Person, runtime: Runtime
) -> None:
    attacker = TestClient(app, client=("203.0.113.9", 4000))
    for _ in range(signin.THROTTLE_LIMIT):
        assert sign_in(attacker, admin.email, "guess")[0] == 401
    status, body = sign_in(attacker, admin.email, PASSWORD)  # even the right password now waits
    assert status == 429
    assert body["error"]["code"] == "too_many_attempts"  # type: ignore[index]
    assert 0 < body["error"]["details"]["retry_after_seconds"] <= 15 * 60 + 1  # type: ignore[index]
    # The admin at another address is not locked out by the attacker.
    assert sign_in(TestClient(app, client=("198.51.100.7", 4000)), admin.email, PASSWORD)[0] == 200
    # Once the window has passed, the address may try again.
    start = runtime.clock()
    runtime.clock = lambda: start + signin.THROTTLE_WINDOW + timedelta(seconds=1)
    assert sign_in(attacker, admin.email, PASSWORD)[0] == 200


def test_failures_before_a_successful_sign_in_do_not_count(runtime: Runtime, admin: Person) -> None:
    now, ip = runtime.clock(), "192.0.2.1"
    with transaction(runtime.sessions) as session:
        for minute in range(signin.THROTTLE_LIMIT):
            at = now - timedelta(minutes=10 - minute)
            audit.record(
                session,
                actor=None,
                action=signin.SIGN_IN_FAILED,
                object_type="user",
                object_label=admin.email,
                ip=ip,
                at=at,
            )
        with pytest.raises(signin.TooManyAttempts):
            signin.check_throttle(session=session, email=admin.email, ip=ip, now=now)
        signin.check_throttle(session=session, email=admin.email, ip="192.0.2.2", now=now)
        user = session.scalars(select(User).where(User.email == admin.email)).one()
        audit.record(
            session,
            actor=user,
            action=signin.SIGN_IN,
            object_type="user",
            object_label=admin.email,
            ip=ip,
            at=now - timedelta(seconds=30),
        )
        signin.check_throttle(session=session, email=admin.email, ip=ip, now=now)
