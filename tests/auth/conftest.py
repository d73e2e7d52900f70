"""Fixtures for the auth tests: the API app, users of every role with API tokens, a browser."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from people import MakeUser, Person, make_person
from segmentsync.api.app import create_app
from segmentsync.auth.models import Role
from segmentsync.runtime import Runtime

__all__ = ["PASSWORD", "MakeUser", "Person"]

PASSWORD = "correct horse battery"


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


@pytest.fixture
def make_user(runtime: Runtime) -> MakeUser:
    """Create a user (with an API token) straight through the service, as the CLI would."""

    def make(email: str, role: Role = Role.VIEWER, *, password: str | None = None) -> Person:
        return make_person(runtime, email, role, password=password)

    return make


@pytest.fixture
def admin(make_user: MakeUser) -> Person:
    return make_user("admin@example.com", Role.ADMIN, password=PASSWORD)


@pytest.fixture
def contributor(make_user: MakeUser) -> Person:
    return make_user("carla@example.com", Role.CONTRIBUTOR)


@pytest.fixture
def viewer(make_user: MakeUser) -> Person:
    return make_user("victor@example.com", Role.VIEWER)


@pytest.fixture
def browser(client: TestClient, admin: Person) -> tuple[TestClient, str]:
    """A client signed in as the admin with the session cookie, and the session's CSRF token."""
    answer = client.post("/api/v1/session", json={"email": admin.email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return client, answer.json()["csrf_token"]
