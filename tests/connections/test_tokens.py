"""Refreshed OAuth tokens are persisted atomically and survive races."""

from __future__ import annotations

import threading
from contextlib import closing
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from segmentsync.connections.access import credentials_for
from segmentsync.connections.destination import destination_for
from segmentsync.connections.models import ConnectionStatus
from segmentsync.destinations.base import ListInfo
from segmentsync.destinations.oauth import ConstantContactOAuth
from segmentsync.errors import ConfigError
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox

from .browser import connect, consent, land
from .conftest import Person, cc_create, cc_list, load, save


def expire(url: str, access_token: str | None = None) -> None:
    body = {"access_token": access_token} if access_token else {}
    httpx.post(f"{url}/_sandbox/tokens/expire", json=body, timeout=10).raise_for_status()


def lists_of(runtime: Runtime, connection_id: int) -> list[ListInfo]:
    destination = destination_for(runtime=runtime, connection=load(runtime, connection_id))
    try:
        return destination.lists()
    finally:
        destination.close()


def test_constant_contact_refresh_rotation_is_persisted(
    runtime: Runtime, sandbox: Sandbox, admin: Person
) -> None:
    account = sandbox.create_cc_account("Shop")
    list_id = cc_list(sandbox, account["access_token"], "Customers")
    connection = save(runtime, cc_create(account=account), admin)
    expire(sandbox.constant_contact_url)

    assert [item.list_id for item in lists_of(runtime, connection.id)] == [list_id]

    stored = load(runtime, connection.id)
    fresh = credentials_for(vault=runtime.vault, connection=stored)
    assert fresh.access_token != account["access_token"]
    assert fresh.refresh_token != account["refresh_token"]
    assert stored.secrets_version == 2
    assert stored.token_expires_at is not None
    with (
        closing(ConstantContactOAuth(sandbox.constant_contact_oauth)) as oauth,
        pytest.raises(ConfigError) as dead,
    ):
        oauth.refresh(account["client_id"], account["client_secret"], account["refresh_token"])
    assert "invalid_grant" in dead.value.message
    # the stored refresh token is the live one: the next expiry is survived too
    expire(sandbox.constant_contact_url)
    assert [item.list_id for item in lists_of(runtime, connection.id)] == [list_id]
    assert load(runtime, connection.id).secrets_version == 3


def test_campaign_monitor_oauth_tokens_are_refreshed_and_kept(
    client: TestClient, runtime: Runtime, sandbox: Sandbox, admin: Person
) -> None:
    cm = sandbox.create_cm_client("Acme")
    connection_id = connect(
        client, admin, {"type": "campaign_monitor", "name": "CM"}, client_id=cm["ClientID"]
    )
    before = credentials_for(vault=runtime.vault, connection=load(runtime, connection_id))
    expire(sandbox.campaign_monitor_url)

    answer = client.get(f"/api/v1/connections/{connection_id}/lists", headers=admin.auth)

    assert answer.status_code == 200, answer.text
    after = credentials_for(vault=runtime.vault, connection=load(runtime, connection_id))
    assert after.refresh_token != before.refresh_token
    assert load(runtime, connection_id).secrets_version == 2


def test_two_processes_refreshing_at_once_lose_no_tokens(
    runtime: Runtime, sandbox: Sandbox, admin: Person
) -> None:
    account = sandbox.create_cc_account("Shop")
    cc_list(sandbox, account["access_token"], "Customers")
    connection = save(runtime, cc_create(account=account), admin)
    # two destinations built from the same stored row, as two worker processes would
    first, second = (
        destination_for(runtime=runtime, connection=load(runtime, connection.id)) for _ in range(2)
    )
    expire(sandbox.constant_contact_url)
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def use(name: str, destination: Any) -> None:
        barrier.wait()
        try:
            results[name] = [item.name for item in destination.lists()]
        except Exception as exc:  # reported below with its message
            results[name] = exc

    threads = [threading.Thread(target=use, args=pair) for pair in (("first", first), ("second", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    first.close()
    second.close()

    assert results == {"first": ["Customers"], "second": ["Customers"]}
    stored = load(runtime, connection.id)
    assert stored.secrets_version == 2  # one refresh won at the platform; the other followed it
    assert stored.status is ConnectionStatus.OK
    expire(sandbox.constant_contact_url)
    assert [item.name for item in lists_of(runtime, connection.id)] == ["Customers"]


def test_tokens_reauthenticated_meanwhile_are_not_overwritten(
    client: TestClient, runtime: Runtime, sandbox: Sandbox, admin: Person
) -> None:
    connection = save(runtime, cc_create(account=sandbox.create_cc_account("Shop")), admin)
    running = destination_for(runtime=runtime, connection=load(runtime, connection.id))  # a long run
    old = credentials_for(vault=runtime.vault, connection=load(runtime, connection.id))
    started = client.post(f"/api/v1/connections/{connection.id}/oauth/start", headers=admin.auth)
    assert land(client, admin, consent(started.json()["authorize_url"])).status_code == 303
    reauthenticated = credentials_for(vault=runtime.vault, connection=load(runtime, connection.id))
    expire(sandbox.constant_contact_url, old.access_token)

    try:
        running.lists()  # refreshes the old grant, finds newer credentials stored, continues with them
    finally:
        running.close()

    stored = credentials_for(vault=runtime.vault, connection=load(runtime, connection.id))
    assert stored.access_token == reauthenticated.access_token
    assert stored.refresh_token == reauthenticated.refresh_token


def test_refused_credentials_mark_the_connection(
    client: TestClient, runtime: Runtime, sandbox: Sandbox, admin: Person
) -> None:
    cm = sandbox.create_cm_client("Acme")
    connection_id = connect(
        client, admin, {"type": "campaign_monitor", "name": "CM"}, client_id=cm["ClientID"]
    )
    httpx.post(
        f"{sandbox.campaign_monitor_url}/_sandbox/tokens/revoke", json={}, timeout=10
    ).raise_for_status()

    answer = client.get(f"/api/v1/connections/{connection_id}/lists", headers=admin.auth)

    assert answer.status_code == 400
    assert "Revoked OAuth Token" in answer.json()["error"]["message"]
    shown = client.get(f"/api/v1/connections/{connection_id}", headers=admin.auth).json()
    assert shown["status"] == "needs_attention"
    assert "Revoked OAuth Token" in shown["status_message"]
    # re-authenticating makes it OK again
    started = client.post(f"/api/v1/connections/{connection_id}/oauth/start", headers=admin.auth)
    landed = land(
        client, admin, consent(started.json()["authorize_url"], choose={"client_id": cm["ClientID"]})
    )
    assert landed.status_code == 303
    verified = client.post(f"/api/v1/connections/{connection_id}/verify", headers=admin.auth)
    assert verified.status_code == 200, verified.text
    assert verified.json()["connection"]["status"] == "ok"
    assert verified.json()["account_name"] == "Acme"
