"""Connection secrets are write-only: never in an API answer, a log line or (in plaintext) the
metadata store, whatever the flow (API key, tokens, OAuth, refresh, errors)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from segmentsync.connections.access import credentials_for
from segmentsync.db import import_models
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox

from .browser import connect
from .conftest import OAuthApps, Person, cc_list, cm_list, load

API = "/api/v1/connections"


class Recorder:
    """Every answer the API gave, as text."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.bodies.append(response.text)


def exercise(client: TestClient, runtime: Runtime, sandbox: Sandbox, admin: Person) -> list[str]:
    """Every flow that handles a connection secret; returns the secrets it used or made."""
    cm = sandbox.create_cm_client("Acme")
    cc = sandbox.create_cc_account("Shop")
    cm_list(sandbox, cm, "Newsletter")
    cc_list(sandbox, cc["access_token"], "Customers")
    key_auth = {"method": "api_key", "api_key": cm["ApiKey"], "client_id": cm["ClientID"]}
    tokens = {"method": "oauth_tokens", **{k: cc[k] for k in ("access_token", "refresh_token")}}
    tokens |= {"oauth_client_id": cc["client_id"], "oauth_client_secret": cc["client_secret"]}
    draft = {"type": "campaign_monitor", "consent": True}
    ids = [
        client.post(API, json={**draft, "name": "Key", "auth": key_auth}, headers=admin.auth).json()["id"],
        client.post(
            API,
            json={**draft, "type": "constant_contact", "name": "Tokens", "auth": tokens},
            headers=admin.auth,
        ).json()["id"],
        connect(client, admin, {"type": "constant_contact", "name": "OAuth"}),
    ]
    client.post(
        API,
        json={**draft, "name": "Bad", "auth": {**key_auth, "api_key": cm["ApiKey"] + "x"}},
        headers=admin.auth,
    )
    httpx.post(f"{sandbox.constant_contact_url}/_sandbox/tokens/expire", json={}, timeout=10)  # refresh
    for connection_id in ids:
        for path in ("", "/lists", "/verify"):
            method = client.post if path == "/verify" else client.get
            method(f"{API}/{connection_id}{path}", headers=admin.auth)
    client.patch(f"{API}/{ids[0]}", json={"auth": key_auth}, headers=admin.auth)
    client.get(API, headers=admin.auth)
    client.get("/api/v1/audit", params={"limit": 500}, headers=admin.auth)
    client.get("/api/v1/openapi.json")
    stored = [credentials_for(vault=runtime.vault, connection=load(runtime, i)) for i in ids]
    refreshed = [value for c in stored for value in (c.access_token, c.refresh_token) if value]
    return [cm["ApiKey"], cc["access_token"], cc["refresh_token"], cc["client_secret"], *refreshed]


def test_secrets_never_appear_in_answers_logs_or_the_store(
    app: FastAPI,
    runtime: Runtime,
    sandbox: Sandbox,
    admin: Person,
    oauth_apps: OAuthApps,
    caplog: pytest.LogCaptureFixture,
    store_url: str,
) -> None:
    caplog.set_level(logging.DEBUG)  # everything, before any redaction
    recorder = Recorder()
    client = TestClient(app)
    client.event_hooks = {"request": [], "response": [recorder]}

    secrets = [
        *exercise(client, runtime, sandbox, admin),
        oauth_apps.cm_client_secret,
        oauth_apps.cc_client_secret,
    ]

    assert len(recorder.bodies) >= 15
    assert len(set(secrets)) >= 9  # the refreshed tokens are new ones
    log_lines = [record.getMessage() for record in caplog.records] + [caplog.text]
    assert any("tokens refreshed" in line for line in log_lines)  # the flow did log
    stored = stored_text(runtime, store_url)
    assert "Acme" in stored  # the check reads the real data
    for secret in secrets:
        assert not [body for body in recorder.bodies if secret in body]
        assert not [line for line in log_lines if secret in line]
        assert secret not in stored


def stored_text(runtime: Runtime, store_url: str) -> str:
    """The metadata store as raw text: the SQLite files' bytes, or every PostgreSQL row as text."""
    runtime.engine.dispose()  # let SQLite finish writing; WAL contents are read as well
    if store_url.startswith("sqlite"):
        path = Path(store_url.removeprefix("sqlite:///"))
        files = [path, Path(f"{path}-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists()).decode("utf-8", "replace")
    with runtime.engine.connect() as conn:
        tables = [table.name for table in import_models().sorted_tables]
        rows = [
            conn.execute(sa.text(f'SELECT CAST(t AS text) FROM "{name}" t')).scalars().all()
            for name in tables
        ]
    return "\n".join(str(row) for table_rows in rows for row in table_rows)
