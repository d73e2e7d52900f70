"""The REST API of connections: who sees what, the setup, edit, remove/detach, the list picker."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from segmentsync.api.openapi import route_policies
from segmentsync.auth.models import Role
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox

from .conftest import MakeUser, Person, add_export, cm_list

API = "/api/v1/connections"


def cm_body(client: dict[str, Any], name: str = "CM Newsletter", **extra: Any) -> dict[str, Any]:
    return {
        "type": "campaign_monitor",
        "name": name,
        "consent": True,
        "auth": {"method": "api_key", "api_key": client["ApiKey"], "client_id": client["ClientID"]},
        **extra,
    }


def create(api: TestClient, admin: Person, body: dict[str, Any]) -> dict[str, Any]:
    answer = api.post(API, json=body, headers=admin.auth)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def test_every_route_checks_the_policy(app: FastAPI) -> None:
    ours = {key: actions for key, actions in route_policies(app).items() if key[1].startswith(API)}
    assert len(ours) == 14
    assert all(ours.values()), [key for key, actions in ours.items() if not actions]


def test_create_with_an_api_key(client: TestClient, sandbox: Sandbox, admin: Person) -> None:
    cm = sandbox.create_cm_client("Acme")

    created = create(client, admin, cm_body(cm))

    assert created["name"] == "CM Newsletter"
    assert created["type"] == "campaign_monitor"
    assert created["shared_with_contributors"] is False
    assert created["consent_by"]["email"] == admin.email
    assert created["export_user"]["email"] == admin.email
    assert created["export_user_problem"] is None
    assert created["settings"]["client_id"] == cm["ClientID"]
    assert created["settings"]["account_name"] == "Acme"
    assert created["secrets_stored"] == ["api_key"]
    assert created["status"] == "ok"
    assert created["exports"] == []


def test_clear_errors(client: TestClient, sandbox: Sandbox, admin: Person) -> None:
    cm = sandbox.create_cm_client("Acme")
    bad_key = client.post(API, json=cm_body({**cm, "ApiKey": "wrong"}), headers=admin.auth)
    no_consent = client.post(API, json={**cm_body(cm), "consent": False}, headers=admin.auth)
    create(client, admin, cm_body(cm))
    taken = client.post(API, json=cm_body(cm), headers=admin.auth)
    cc_key = client.post(API, json={**cm_body(cm, "X"), "type": "constant_contact"}, headers=admin.auth)

    assert bad_key.status_code == 400
    assert bad_key.json()["error"]["field"] == "auth"
    assert "Campaign Monitor" in bad_key.json()["error"]["message"]
    assert (no_consent.status_code, no_consent.json()["error"]["field"]) == (422, "consent")
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "name_taken")
    assert (cc_key.status_code, cc_key.json()["error"]["field"]) == (422, "auth.method")


def test_who_sees_what(
    client: TestClient, sandbox: Sandbox, admin: Person, contributor: Person, viewer: Person
) -> None:
    cm = sandbox.create_cm_client()
    shared = create(client, admin, cm_body(cm, "Shared", shared_with_contributors=True))
    private = create(client, admin, cm_body(cm, "Private"))

    as_admin = client.get(API, headers=admin.auth).json()
    as_contributor = client.get(API, headers=contributor.auth).json()

    assert [item["name"] for item in as_admin["items"]] == ["Private", "Shared"]
    assert "settings" in as_admin["items"][0]
    assert as_contributor == {
        "items": [{"id": shared["id"], "name": "Shared", "type": "campaign_monitor"}],
        "total": 1,
        "limit": 50,
        "offset": 0,
        "next_cursor": None,  # every page has the field; this list reads by offset only
    }
    assert client.get(f"{API}/{shared['id']}", headers=contributor.auth).json() == as_contributor["items"][0]
    assert client.get(f"{API}/{private['id']}", headers=contributor.auth).status_code == 404
    assert client.get(API, headers=viewer.auth).status_code == 403
    assert client.get(f"{API}?type=constant_contact", headers=admin.auth).json()["total"] == 0
    assert client.get(f"{API}?limit=1&offset=1", headers=admin.auth).json()["items"][0]["name"] == "Shared"
    for path in (f"{API}/{shared['id']}", f"{API}/{shared['id']}/verify", f"{API}/{shared['id']}/detach"):
        assert client.post(path, headers=contributor.auth).status_code in (403, 405)
    assert (
        client.patch(f"{API}/{shared['id']}", json={"name": "x"}, headers=contributor.auth).status_code == 403
    )
    assert client.delete(f"{API}/{shared['id']}", headers=contributor.auth).status_code == 403


def test_edit_remove_and_detach(
    client: TestClient, runtime: Runtime, sandbox: Sandbox, admin: Person
) -> None:
    cm = sandbox.create_cm_client()
    connection = create(client, admin, cm_body(cm))
    path = f"{API}/{connection['id']}"
    weekly = add_export(runtime, connection["id"], "Weekly")
    daily = add_export(runtime, connection["id"], "Daily")

    edited = client.patch(
        path, json={"name": "Renamed", "shared_with_contributors": True}, headers=admin.auth
    )
    refused = client.delete(path, headers=admin.auth)
    detached = client.post(f"{path}/detach", json={"export_ids": [weekly]}, headers=admin.auth)
    shown = client.get(path, headers=admin.auth).json()
    all_detached = client.post(f"{path}/detach", headers=admin.auth)
    removed = client.delete(path, headers=admin.auth)

    assert edited.status_code == 200, edited.text
    assert (edited.json()["name"], edited.json()["shared_with_contributors"]) == ("Renamed", True)
    assert [e["name"] for e in edited.json()["exports"]] == ["Daily", "Weekly"]
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "connection_in_use"
    assert refused.json()["error"]["details"]["exports"] == [
        {"id": daily, "name": "Daily"},
        {"id": weekly, "name": "Weekly"},
    ]
    assert detached.json() == [{"id": weekly, "name": "Weekly"}]
    assert [e["name"] for e in shown["exports"]] == ["Daily"]
    assert all_detached.json() == [{"id": daily, "name": "Daily"}]
    assert removed.status_code == 204
    assert client.get(path, headers=admin.auth).status_code == 404


def test_reauthenticate_with_a_new_key(client: TestClient, sandbox: Sandbox, admin: Person) -> None:
    first, second = sandbox.create_cm_client("First"), sandbox.create_cm_client("Second")
    connection = create(client, admin, cm_body(first))
    auth = {"method": "api_key", "api_key": second["ApiKey"], "client_id": second["ClientID"]}

    answer = client.patch(f"{API}/{connection['id']}", json={"auth": auth}, headers=admin.auth)

    assert answer.status_code == 200, answer.text
    assert answer.json()["settings"]["account_name"] == "Second"


def test_another_admin_adds_themselves_as_export_user(
    client: TestClient, sandbox: Sandbox, admin: Person, make_user: MakeUser
) -> None:
    connection = create(client, admin, cm_body(sandbox.create_cm_client(), add_me_as_export_user=False))
    assert connection["export_user"] is None
    otto = make_user("otto@example.com", Role.ADMIN)

    answer = client.post(f"{API}/{connection['id']}/export-user", headers=otto.auth)

    assert answer.status_code == 200
    assert answer.json()["export_user"]["email"] == otto.email


def test_the_list_picker(client: TestClient, sandbox: Sandbox, admin: Person, contributor: Person) -> None:
    cm = sandbox.create_cm_client()
    lists = sorted(cm_list(sandbox, cm, title) for title in ("Alpha", "Beta", "Gamma"))
    httpx.post(
        f"{sandbox.campaign_monitor_api}/lists/{lists[0]}/customfields.json",
        json={"FieldName": "City", "DataType": "Text"},
        auth=(cm["ApiKey"], "x"),
        timeout=10,
    ).raise_for_status()
    shared = create(client, admin, cm_body(cm, shared_with_contributors=True))
    private = create(client, admin, cm_body(cm, "Private"))
    base = f"{API}/{shared['id']}/lists"

    page = client.get(f"{base}?limit=2", headers=contributor.auth).json()
    one = client.get(f"{base}/{lists[0]}", headers=contributor.auth).json()
    fields = client.get(f"{base}/{lists[0]}/custom-fields", headers=contributor.auth).json()
    unknown = client.get(f"{base}/{'0' * 32}", headers=admin.auth)

    assert page["total"] == 3
    assert len(page["items"]) == 2
    assert {item["list_id"] for item in page["items"]} <= set(lists)
    assert one["list_id"] == lists[0]
    assert one["member_count"] == 0
    assert [(f["key"], f["name"], f["type"]) for f in fields["items"]] == [("[City]", "City", "text")]
    assert unknown.status_code in (400, 404)
    assert (
        client.get(f"{API}/{shared['id']}", headers=admin.auth).json()["status"] == "ok"
    )  # not an auth failure
    assert client.get(f"{API}/{private['id']}/lists", headers=contributor.auth).status_code == 404


@pytest.mark.parametrize("method", ["get", "post"])
def test_no_token_no_answer(client: TestClient, method: str) -> None:
    answer = getattr(client, method)(API)
    assert answer.status_code == 401
