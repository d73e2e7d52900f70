"""Secrets are write-only and never logged, after end-to-end runs: the Campaign Monitor API
key, the Constant Contact tokens (the first ones, those a run refreshed, those a failed refresh
left behind), the OAuth client secret, the vault key and our API token appear in no API answer,
no log line (everything at DEBUG, httpx and httpcore included, raw records as well as the
product's redacted output) and nowhere in the metadata store's plaintext."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from exports.world import World
from segmentsync.api.app import create_app
from segmentsync.connections.access import credentials_for
from segmentsync.connections.models import Connection
from segmentsync.db import import_models
from segmentsync.destinations.oauth import ConstantContactOAuth
from segmentsync.logs import configure_logging

from .scenario import drive, make_export, start_run

API = "/api/v1"
CHATTY = ("httpx", "httpcore", "segmentsync", "sqlalchemy.engine", "stamina")


@pytest.fixture
def product_log(world: World, caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """The production log set-up (JSON lines, redaction) at DEBUG into a buffer; caplog keeps the
    raw records too. httpx and httpcore, quiet by default, are turned up to DEBUG."""
    stream = io.StringIO()
    settings = world.runtime.settings
    settings.log_format, settings.log_level = "json", "DEBUG"
    handler = configure_logging(settings, stream=stream)
    caplog.set_level(logging.DEBUG)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield stream
    logging.getLogger().removeHandler(handler)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.NOTSET)


def stored_tokens(world: World, connection_id: int) -> list[str]:
    with world.runtime.sessions() as session:
        connection = session.get(Connection, connection_id)
        assert connection is not None
        credentials = credentials_for(vault=world.runtime.vault, connection=connection)
    return [t for t in (credentials.access_token, credentials.refresh_token) if t]


def spend_refresh_token(world: World) -> list[str]:
    """Someone else refreshes with the stored refresh token: ours is dead (single use)."""
    access, refresh = stored_tokens(world, world.cc.connection_id)
    account = world.cc.credentials
    tokens = ConstantContactOAuth(world.sandbox.constant_contact_oauth).refresh(
        account["client_id"], account["client_secret"], refresh
    )
    expire(world, access)
    return [tokens.access_token, tokens.refresh_token]


def expire(world: World, access_token: str | None = None) -> None:
    httpx.post(
        f"{world.sandbox.constant_contact_url}/_sandbox/tokens/expire",
        json={"access_token": access_token} if access_token else {},
        timeout=10,
    ).raise_for_status()


def answers(world: World) -> list[str]:
    """Every answer of the API and the pages about what happened, as text."""
    bodies: list[str] = []
    client = TestClient(create_app(world.runtime), headers=world.admin.auth)
    client.event_hooks = {"request": [], "response": [lambda r: (r.read(), bodies.append(r.text))]}
    runs = client.get(f"{API}/runs", params={"limit": 100}).json()["items"]
    for run in runs:
        for path in ("", "/rows", "/rows.csv"):
            client.get(f"{API}/runs/{run['id']}{path}")
        client.get(f"/runs/{run['id']}")
    for path in (
        "/exports",
        "/connections",
        "/system/status",
        "/system/notifications",
        "/audit",
        "/openapi.json",
    ):
        client.get(f"{API}{path}", params={"limit": 500} if path in ("/audit",) else None)
    for connection_id in (world.cm.connection_id, world.cc.connection_id):
        client.get(f"{API}/connections/{connection_id}")
        client.post(f"{API}/connections/{connection_id}/verify")
    for page in ("/exports", "/connections", f"/connections/{world.cc.connection_id}", "/status", "/audit"):
        client.get(page)
    client.get("/metrics")
    assert len(bodies) >= 25
    return bodies


def stored_text(world: World) -> str:
    """The metadata store as raw text: the SQLite files' bytes, or every PostgreSQL row as text."""
    runtime = world.runtime
    runtime.engine.dispose()  # SQLite: let it finish writing; the WAL is read as well
    url = runtime.settings.resolved_database_url
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        files = [path, Path(f"{path}-wal"), Path(f"{path}-journal")]
        return b"".join(f.read_bytes() for f in files if f.exists()).decode("utf-8", "replace")
    with runtime.engine.connect() as conn:
        tables = [table.name for table in import_models().sorted_tables]
        rows = [
            conn.execute(sa.text(f'SELECT CAST(t AS text) FROM "{name}" t')).scalars().all()
            for name in tables
        ]
    return "\n".join(str(row) for table_rows in rows for row in table_rows)


def test_no_secret_in_answers_logs_or_the_store_after_runs(
    world: World, product_log: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = [
        world.cm.credentials["ApiKey"],
        world.cc.credentials["access_token"],
        world.cc.credentials["refresh_token"],
        world.cc.credentials["client_secret"],
        world.runtime.settings.secret_key.get_secret_value(),  # type: ignore[union-attr]  # set by the fixture
        world.admin.token,
    ]
    cm_run, _ = drive(world.runtime, start_run(world, make_export(world, "campaign_monitor")))
    expire(world)  # the Constant Contact run refreshes its token first
    cc_export = make_export(world, "constant_contact")
    cc_run, _ = drive(world.runtime, start_run(world, cc_export))
    assert (cm_run.status.value, cc_run.status.value) == ("succeeded", "succeeded"), (
        cm_run.error,
        cc_run.error,
    )
    refreshed = stored_tokens(world, world.cc.connection_id)
    assert not set(refreshed) & set(secrets)  # the run did refresh
    secrets += refreshed + spend_refresh_token(world)
    failed, _ = drive(world.runtime, start_run(world, cc_export, full_resync=True))
    assert failed.status.value == "failed", failed.error  # needs re-authentication
    assert failed.error

    bodies = answers(world)
    log_text = product_log.getvalue()
    raw = [record.getMessage() for record in caplog.records] + [caplog.text]
    assert "HTTP Request: POST" in caplog.text  # httpx did log at DEBUG
    assert '"logger": "segmentsync.' in log_text
    stored = stored_text(world)
    assert "person1@example.com" in stored  # the check reads the real data
    for secret in secrets:
        where = [
            name
            for name, found in (
                ("an API answer", any(secret in body for body in bodies)),
                ("the log", secret in log_text),
                ("a raw log record", any(secret in line for line in raw)),
                ("the store", secret in stored),
            )
            if found
        ]
        assert not where, f"a secret ({secret[:4]}…) is in {', '.join(where)}"
