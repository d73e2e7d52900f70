"""The audit log: every change is recorded with who and when; admins filter it in the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from segmentsync.auth import audit
from segmentsync.db import transaction
from segmentsync.runtime import Runtime

from .conftest import PASSWORD, Person

AUDIT = "/api/v1/audit"


def entries(client: TestClient, admin: Person, **params: Any) -> list[dict[str, Any]]:
    answer = client.get(AUDIT, params=params, headers=admin.auth)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_user_and_token_changes_are_recorded_with_before_and_after(
    client: TestClient, admin: Person, viewer: Person
) -> None:
    client.patch(f"/api/v1/users/{viewer.id}", json={"role": "contributor"}, headers=admin.auth)
    client.patch(f"/api/v1/users/{viewer.id}", json={"is_active": False}, headers=admin.auth)
    token = client.post(f"/api/v1/users/{viewer.id}/tokens", json={"name": "bi"}, headers=admin.auth).json()
    client.delete(f"/api/v1/users/{viewer.id}/tokens/{token['id']}", headers=admin.auth)
    [revoke, create, deactivate, set_role] = entries(client, admin, actor=admin.email)[:4]
    assert (set_role["action"], set_role["object_type"], set_role["object_id"]) == (
        "user.set_role",
        "user",
        str(viewer.id),
    )
    assert (set_role["before"]["role"], set_role["after"]["role"]) == ("viewer", "contributor")
    assert (deactivate["action"], deactivate["after"]["is_active"]) == ("user.deactivate", False)
    assert (create["action"], create["after"]["prefix"]) == ("api_token.create", token["prefix"])
    assert (revoke["action"], revoke["object_id"]) == ("api_token.revoke", str(token["id"]))
    assert all(entry["actor_id"] == admin.id and entry["ip"] == "testclient" for entry in (revoke, set_role))


def test_users_made_from_the_command_line_are_recorded_as_the_system(
    client: TestClient, admin: Person
) -> None:
    [created] = entries(client, admin, object_type="user", object_id=str(admin.id), action="user.create")
    assert (created["actor_label"], created["actor_id"]) == ("system", None)
    assert "password_hash" not in created["after"]


def test_filters_combine_and_the_newest_comes_first(
    client: TestClient, admin: Person, viewer: Person
) -> None:
    client.post("/api/v1/session", json={"email": admin.email, "password": "wrong"})
    client.post("/api/v1/session", json={"email": admin.email, "password": PASSWORD})
    sign_ins = entries(client, admin, action="auth.*")
    assert [entry["action"] for entry in sign_ins] == ["auth.sign_in", "auth.sign_in_failed"]
    assert [entry["action"] for entry in entries(client, admin, action="auth.sign_in")] == ["auth.sign_in"]
    assert entries(client, admin, action="auth.sign_in_failed")[0]["actor_label"] == admin.email
    about_viewer = entries(client, admin, object_type="user", object_id=str(viewer.id))
    assert [entry["action"] for entry in about_viewer] == ["user.create"]
    assert entries(client, admin, actor_id=admin.id, action="user.*") == []
    assert entries(client, admin, action="user*") != []  # the prefix is a plain prefix


def test_time_filters_take_from_inclusive_and_to_exclusive(
    client: TestClient, admin: Person, runtime: Runtime
) -> None:
    noon = runtime.clock().replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)
    with transaction(runtime.sessions) as session:
        for hour in range(3):
            audit.record(
                session,
                actor=None,
                action="test.tick",
                object_type="clock",
                object_id=str(hour),
                at=noon + timedelta(hours=hour),
            )

    def ticks(**params: Any) -> list[str]:
        return [entry["object_id"] for entry in entries(client, admin, action="test.tick", **params)]

    assert ticks() == ["2", "1", "0"]
    assert ticks(**{"from": (noon + timedelta(hours=1)).isoformat()}) == ["2", "1"]
    assert ticks(to=(noon + timedelta(hours=1)).isoformat()) == ["0"]
    naive_utc = (noon + timedelta(hours=2)).replace(tzinfo=None).isoformat()  # no zone: UTC
    assert ticks(**{"from": naive_utc}) == ["2"]


def test_pages_and_single_entries(client: TestClient, admin: Person, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        for number in range(5):
            audit.record(session, actor=None, action="test.page", object_type="page", object_id=str(number))
    page = client.get(
        AUDIT, params={"action": "test.page", "limit": 2, "offset": 2}, headers=admin.auth
    ).json()
    assert page["total"] == 5
    assert [entry["object_id"] for entry in page["items"]] == ["2", "1"]
    one = client.get(f"{AUDIT}/{page['items'][0]['id']}", headers=admin.auth).json()
    assert one["object_id"] == "2"
    assert client.get(f"{AUDIT}/999999", headers=admin.auth).status_code == 404


def test_secrets_in_snapshots_are_masked(client: TestClient, admin: Person, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        audit.record(
            session,
            actor=None,
            action="connection.update",
            object_type="connection",
            before={"api_key": "old-key-123", "settings": {"client_secret": "abc", "name": "CM"}},
            after={"api_key": "new-key-456"},
        )
    [entry] = entries(client, admin, action="connection.update")
    assert entry["before"] == {"api_key": audit.MASK, "settings": {"client_secret": audit.MASK, "name": "CM"}}
    assert entry["after"] == {"api_key": audit.MASK}


def test_only_admins_read_the_audit_log(client: TestClient, contributor: Person) -> None:
    answer = client.get(AUDIT, headers=contributor.auth)
    assert answer.status_code == 403
    assert answer.json()["error"]["details"] == {"action": "audit.view", "role": "contributor"}
