"""Forwarded headers are believed only from the proxies named in SEGMENTSYNC_TRUSTED_PROXIES
(default: none, loopback included), and password guessing is throttled per address too."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from segmentsync.api.app import create_app, server_config
from segmentsync.auth import signin
from segmentsync.auth.models import AuditEntry
from segmentsync.runtime import Runtime
from segmentsync.settings import Settings

from .conftest import PASSWORD, Person

SESSION = "/api/v1/session"
TIMEOUT = 60  # password hashing is slow on a busy machine; httpx waits 5 s by default
FORGED = {"X-Forwarded-For": "203.0.113.66", "X-Forwarded-Proto": "https"}


# Which address is believed does not depend on the store: SQLite only (the sign-in and audit
# tests cover both stores).
ON_SQLITE = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def failed_sign_in_addresses(runtime: Runtime) -> list[str | None]:
    with runtime.sessions() as session:
        return list(session.scalars(select(AuditEntry.ip).where(AuditEntry.action == signin.SIGN_IN_FAILED)))


@pytest.fixture
def served(runtime: Runtime) -> Iterator[str]:
    """The app served the way ``serve`` serves it (its uvicorn settings), on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    runtime.settings.port = port
    server = uvicorn.Server(server_config(create_app(runtime), runtime.settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@ON_SQLITE
def test_serve_believes_no_forwarded_header_from_loopback(
    served: str, runtime: Runtime, admin: Person
) -> None:
    answer = httpx.post(
        f"{served}{SESSION}",
        json={"email": admin.email, "password": "guess"},
        headers=FORGED,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 401
    assert failed_sign_in_addresses(runtime) == ["127.0.0.1"]  # not the forged 203.0.113.66
    assert "server" not in answer.headers


@ON_SQLITE
def test_changing_the_header_does_not_escape_the_throttle(
    served: str, admin: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signin, "THROTTLE_LIMIT", 3)  # fewer slow password checks; same rule
    for attempt in range(signin.THROTTLE_LIMIT):
        headers = {"X-Forwarded-For": f"198.51.100.{attempt}"}
        answer = httpx.post(
            f"{served}{SESSION}",
            json={"email": admin.email, "password": "x"},
            headers=headers,
            timeout=TIMEOUT,
        )
        assert answer.status_code == 401
    headers = {"X-Forwarded-For": "198.51.100.200"}
    answer = httpx.post(
        f"{served}{SESSION}",
        json={"email": admin.email, "password": PASSWORD},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 429


@ON_SQLITE
def test_a_named_proxy_is_believed(runtime: Runtime, admin: Person) -> None:
    runtime.settings.trusted_proxies = "10.0.0.0/8, 127.0.0.1"
    proxied = TestClient(create_app(runtime), client=("10.1.2.3", 4000))
    chain = {"X-Forwarded-For": "192.0.2.1, 203.0.113.66"}  # the proxy appends what it saw: the last
    assert (
        proxied.post(SESSION, json={"email": admin.email, "password": "x"}, headers=chain).status_code == 401
    )
    stranger = TestClient(create_app(runtime), client=("192.0.2.99", 4000))
    assert (
        stranger.post(SESSION, json={"email": admin.email, "password": "x"}, headers=FORGED).status_code
        == 401
    )
    assert failed_sign_in_addresses(runtime) == ["203.0.113.66", "192.0.2.99"]


def test_the_setting_takes_addresses_and_networks_only(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="not an IP address or network"):
        Settings(data_dir=settings.data_dir, trusted_proxies="10.0.0.1, proxy.example.com")


@ON_SQLITE
def test_many_emails_tried_from_one_address_are_throttled(
    app: FastAPI, admin: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signin, "ADDRESS_LIMIT", 4)  # fewer slow password checks; same rule
    assert signin.ADDRESS_LIMIT < signin.THROTTLE_LIMIT  # so one email's own limit is not what stops it
    guesser = TestClient(app, client=("203.0.113.9", 4000))
    for number in range(signin.ADDRESS_LIMIT):
        body = {"email": f"someone{number}@example.com", "password": "guess"}
        assert guesser.post(SESSION, json=body).status_code == 401
    answer = guesser.post(SESSION, json={"email": admin.email, "password": PASSWORD})
    assert answer.status_code == 429
    assert "from your address" in answer.json()["error"]["message"]
    elsewhere = TestClient(app, client=("198.51.100.7", 4000))
    assert elsewhere.post(SESSION, json={"email": admin.email, "password": PASSWORD}).status_code == 200
