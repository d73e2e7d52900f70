"""API tokens: shown once, stored hashed, revocable, with their last use; admins manage anyone's."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from segmentsync.auth import service
from segmentsync.auth.models import ApiToken
from segmentsync.db import transaction
from segmentsync.errors import Invalid
from segmentsync.runtime import Runtime

from .conftest import Person

TOKENS = "/api/v1/me/tokens"


def test_a_new_token_is_shown_once_and_only_its_hash_is_kept(
    client: TestClient, viewer: Person, runtime: Runtime
) -> None:
    created = client.post(TOKENS, json={"name": "nightly script"}, headers=viewer.auth)
    assert created.status_code == 201
    body = created.json()
    token = body["token"]
    assert token.startswith("ss_")
    assert len(token) >= 40
    assert token.startswith(body["prefix"])
    listed = client.get(TOKENS, headers=viewer.auth)
    assert token not in listed.text
    assert [item["name"] for item in listed.json()["items"]] == ["nightly script", "tests"]
    with transaction(runtime.sessions) as session:
        row = session.get(ApiToken, body["id"])
        assert row is not None
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["user"]["id"]
        == viewer.id
    )


def test_last_use_is_recorded_without_a_write_per_request(
    client: TestClient, viewer: Person, runtime: Runtime
) -> None:
    start = runtime.clock()
    runtime.clock = lambda: start
    client.get("/api/v1/me", headers=viewer.auth)
    runtime.clock = lambda: start + timedelta(seconds=20)
    client.get("/api/v1/me", headers=viewer.auth)
    [item] = client.get(TOKENS, headers=viewer.auth).json()["items"]
    assert item["last_used_at"] == start.isoformat().replace("+00:00", "Z")
    runtime.clock = lambda: start + timedelta(minutes=2)
    client.get("/api/v1/me", headers=viewer.auth)
    with transaction(runtime.sessions) as session:
        row = session.scalars(select(ApiToken).where(ApiToken.user_id == viewer.id)).one()
        assert row.last_used_at == start + timedelta(minutes=2)


def test_a_revoked_token_stops_working_at_once(client: TestClient, viewer: Person) -> None:
    spare = client.post(TOKENS, json={"name": "spare"}, headers=viewer.auth).json()
    spare_auth = {"Authorization": f"Bearer {spare['token']}"}
    assert client.delete(f"{TOKENS}/{spare['id']}", headers=viewer.auth).status_code == 204
    refused = client.get("/api/v1/me", headers=spare_auth)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert [item["name"] for item in client.get(TOKENS, headers=viewer.auth).json()["items"]] == ["tests"]
    everything = client.get(TOKENS, params={"include_revoked": "true"}, headers=viewer.auth).json()["items"]
    assert [(item["name"], item["revoked_at"] is not None) for item in everything] == [
        ("spare", True),
        ("tests", False),
    ]
    assert client.delete(f"{TOKENS}/{spare['id']}", headers=viewer.auth).status_code == 204  # idempotent


def test_nobody_revokes_someone_elses_token_through_their_own_account(
    client: TestClient, viewer: Person, contributor: Person
) -> None:
    theirs = client.get(TOKENS, headers=contributor.auth).json()["items"][0]["id"]
    assert client.delete(f"{TOKENS}/{theirs}", headers=viewer.auth).status_code == 404
    assert client.get("/api/v1/me", headers=contributor.auth).status_code == 200


def test_an_admin_manages_any_users_tokens(client: TestClient, admin: Person, viewer: Person) -> None:
    base = f"/api/v1/users/{viewer.id}/tokens"
    created = client.post(base, json={"name": "for the BI tool"}, headers=admin.auth).json()
    assert created["user_id"] == viewer.id
    as_viewer = {"Authorization": f"Bearer {created['token']}"}
    assert client.get("/api/v1/me", headers=as_viewer).json()["user"]["email"] == viewer.email
    assert [item["name"] for item in client.get(base, headers=admin.auth).json()["items"]] == [
        "for the BI tool",
        "tests",
    ]
    assert client.delete(f"{base}/{created['id']}", headers=admin.auth).status_code == 204
    assert client.get("/api/v1/me", headers=as_viewer).status_code == 401
    assert (
        client.delete(f"/api/v1/users/{admin.id}/tokens/{created['id']}", headers=admin.auth).status_code
        == 404
    )


def test_garbage_and_unknown_tokens_are_refused(client: TestClient, viewer: Person) -> None:
    for header in (
        "Bearer ss_unknown-token",
        "Bearer x",
        "Bearer " + "ss_" + "a" * 500,
        "Basic dXNlcjpwYXNz",
    ):
        answer = client.get("/api/v1/me", headers={"Authorization": header})
        assert answer.status_code == 401, header


def test_token_names_are_required(client: TestClient, viewer: Person, runtime: Runtime) -> None:
    assert client.post(TOKENS, json={"name": ""}, headers=viewer.auth).status_code == 422
    with transaction(runtime.sessions) as session:
        user = service.get_user(session=session, user_id=viewer.id)
        with pytest.raises(Invalid) as refused:
            service.create_api_token(session=session, user=user, name="   ", actor=None, now=runtime.clock())
    assert refused.value.field == "name"
