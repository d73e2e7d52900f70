"""Fixtures for the connection tests: settings pointing at the sandbox (with OAuth applications
registered there), users of every role with API tokens, the API app, and sandbox accounts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient

from people import MakeUser, Person, make_person
from segmentsync.api.app import create_app
from segmentsync.auth.models import Role, User
from segmentsync.connections import service
from segmentsync.connections.models import Connection, ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionCreate, TokenAuth
from segmentsync.db import transaction
from segmentsync.exports.models import Export
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.settings import Settings

BASE_URL = "http://testserver"  # the TestClient's host: the OAuth redirect URI points here
CALLBACK = f"{BASE_URL}/api/v1/connections/oauth/callback"


@dataclass
class OAuthApps:
    cm_client_id: str
    cm_client_secret: str
    cc_client_id: str
    cc_client_secret: str


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(url, json=body, timeout=10)
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


@pytest.fixture
def oauth_apps(sandbox: Sandbox) -> OAuthApps:
    """Our OAuth applications, registered with both emulators for our redirect URI."""
    cm = _post(
        f"{sandbox.campaign_monitor_url}/_sandbox/oauth_apps",
        {"name": "segmentsync", "redirect_uri": CALLBACK},
    )
    cc = _post(
        f"{sandbox.constant_contact_url}/_sandbox/apps", {"name": "segmentsync", "redirect_uris": [CALLBACK]}
    )
    return OAuthApps(cm["client_id"], cm["client_secret"], cc["client_id"], cc["client_secret"])


@pytest.fixture
def settings(tmp_path: Path, sandbox: Sandbox, oauth_apps: OAuthApps) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    return Settings(
        data_dir=data_dir,
        secret_key=Fernet.generate_key().decode(),
        base_url=BASE_URL,
        campaign_monitor_api_url=sandbox.campaign_monitor_api,
        campaign_monitor_oauth_url=sandbox.campaign_monitor_oauth,
        constant_contact_api_url=sandbox.constant_contact_api,
        constant_contact_oauth_url=sandbox.constant_contact_oauth,
        campaign_monitor_client_id=oauth_apps.cm_client_id,
        campaign_monitor_client_secret=oauth_apps.cm_client_secret,
        constant_contact_client_id=oauth_apps.cc_client_id,
        constant_contact_client_secret=oauth_apps.cc_client_secret,
    )


@pytest.fixture
def make_user(runtime: Runtime) -> MakeUser:
    def make(email: str, role: Role = Role.VIEWER) -> Person:
        return make_person(runtime, email, role)

    return make


@pytest.fixture
def admin(make_user: MakeUser) -> Person:
    return make_user("ada@example.com", Role.ADMIN)


@pytest.fixture
def contributor(make_user: MakeUser) -> Person:
    return make_user("carl@example.com", Role.CONTRIBUTOR)


@pytest.fixture
def viewer(make_user: MakeUser) -> Person:
    return make_user("vera@example.com", Role.VIEWER)


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


def user(runtime: Runtime, person: Person) -> User:
    with runtime.sessions() as session:
        found = session.get(User, person.id)
        assert found is not None
        return found


# ---------------------------------------------------------------- connections and exports


def cm_create(name: str = "CM Newsletter", *, key: str, client_id: str, **draft: Any) -> ConnectionCreate:
    return ConnectionCreate(
        type=ConnectionType.CAMPAIGN_MONITOR,
        name=name,
        consent=True,
        auth=ApiKeyAuth(api_key=key, client_id=client_id),
        **draft,
    )


def cc_create(name: str = "CC Main", *, account: dict[str, Any], **draft: Any) -> ConnectionCreate:
    return ConnectionCreate(
        type=ConnectionType.CONSTANT_CONTACT,
        name=name,
        consent=True,
        auth=TokenAuth(
            access_token=account["access_token"],
            refresh_token=account["refresh_token"],
            oauth_client_id=account["client_id"],
            oauth_client_secret=account["client_secret"],
        ),
        **draft,
    )


def save(runtime: Runtime, data: ConnectionCreate, person: Person) -> Connection:
    with transaction(runtime.sessions) as session:
        actor = session.get(User, person.id)
        assert actor is not None
        return service.create(session=session, runtime=runtime, data=data, actor=actor)


def load(runtime: Runtime, connection_id: int) -> Connection:
    with runtime.sessions() as session:
        found = session.get(Connection, connection_id)
        assert found is not None
        return found


def add_export(runtime: Runtime, connection_id: int, name: str) -> int:
    with transaction(runtime.sessions) as session:
        export = Export(name=name, connection_id=connection_id, list_id="x" * 32, email_column="email")
        session.add(export)
        session.flush()
        return export.id


def cm_list(sandbox: Sandbox, client: dict[str, Any], title: str) -> str:
    """A list made through the real API, as a marketer would in Campaign Monitor."""
    return sandbox.cm_create_list(client, title)


def cc_list(sandbox: Sandbox, access_token: str, name: str) -> str:
    return sandbox.cc_create_list(access_token, name)
