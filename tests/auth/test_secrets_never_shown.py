"""Passwords and API tokens never appear in API answers (but the one that creates them), in log
lines (even at DEBUG, before redaction) or in plaintext in the metadata store."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from segmentsync.db import import_models
from segmentsync.logs import configure_logging
from segmentsync.runtime import Runtime

from .conftest import PASSWORD, Person


class Recorder:
    """Every answer the API gave, as text."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.bodies.append(response.text)

    def client(self, app: FastAPI, **kwargs: object) -> TestClient:
        client = TestClient(app, **kwargs)  # type: ignore[arg-type]  # TestClient's own keywords
        client.event_hooks = {"request": [], "response": [self]}
        return client


@pytest.fixture
def json_log(runtime: Runtime) -> Iterator[io.StringIO]:
    """The production log configuration (JSON lines, redaction) writing into a buffer."""
    stream = io.StringIO()
    runtime.settings.log_format = "json"
    handler = configure_logging(runtime.settings, stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def exercise(app: FastAPI, admin: Person, recorder: Recorder) -> dict[str, list[str]]:
    """Everything that handles a password or a token; returns the secrets it used or made."""
    api = recorder.client(app, headers=admin.auth)
    given = ["given password 1", "new password 22", "reset password 333"]
    created = api.post("/api/v1/users", json={"email": "u1@example.com", "password": given[0]}).json()
    generated = api.post("/api/v1/users", json={"email": "u2@example.com"}).json()["generated_password"]
    tokens = [
        api.post("/api/v1/me/tokens", json={"name": "mine"}).json()["token"],
        api.post(f"/api/v1/users/{created['id']}/tokens", json={"name": "theirs"}).json()["token"],
    ]
    browser = recorder.client(app)
    browser.post("/api/v1/session", json={"email": "u1@example.com", "password": "wrong " + given[0]})
    browser.post("/api/v1/session", json={"email": given[0], "password": given[0]})  # typed in the wrong box
    csrf = browser.post("/api/v1/session", json={"email": "u1@example.com", "password": given[0]}).json()
    change = {"current_password": given[0], "new_password": given[1]}
    browser.put("/api/v1/me/password", json=change, headers={"X-CSRF-Token": csrf["csrf_token"]})
    api.put(f"/api/v1/users/{created['id']}/password", json={"new_password": given[2]})
    for token in tokens:
        recorder.client(app).get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    recorder.client(app).get("/api/v1/me", headers={"Authorization": f"Bearer {tokens[0]}x"})
    for path in (
        "/api/v1/users",
        "/api/v1/me/tokens",
        f"/api/v1/users/{created['id']}/tokens",
        "/api/v1/audit",
    ):
        api.get(path, params={"limit": 500})
    api.get("/api/v1/openapi.json")
    api.get("/metrics")
    return {"shown once": [generated, *tokens], "never shown": [*given, PASSWORD, admin.token]}


def test_secrets_never_appear_in_answers_logs_or_the_store(
    app: FastAPI,
    admin: Person,
    runtime: Runtime,
    json_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    store_url: str,
) -> None:
    caplog.set_level(logging.DEBUG)  # everything, before any redaction
    recorder = Recorder()
    secrets = exercise(app, admin, recorder)

    for secret in secrets["shown once"]:
        assert sum(secret in body for body in recorder.bodies) == 1, "shown more than once"
    for secret in secrets["never shown"]:
        assert not [body for body in recorder.bodies if secret in body]
    everything = secrets["shown once"] + secrets["never shown"]
    log_lines = [record.getMessage() for record in caplog.records] + [caplog.text, json_log.getvalue()]
    assert caplog.records  # the flow did log (sign-in failures)
    assert len(recorder.bodies) >= 15
    for secret in everything:
        assert not [line for line in log_lines if secret in line]
    stored = stored_text(runtime, store_url)
    assert "u1@example.com" in stored  # the check reads the real data
    for secret in everything:
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
