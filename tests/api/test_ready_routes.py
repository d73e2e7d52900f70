"""A started app has its routes ready: the first requests do not pay for preparing 171 routes
(0.4 s of CPU, 1.8-2.2 s of waiting for everyone on a busy, freshly started web process)."""

from __future__ import annotations

from typing import Any

import fastapi.routing
import pytest
from fastapi.testclient import TestClient

from people import make_person
from segmentsync.api.app import create_app
from segmentsync.auth.models import Role
from segmentsync.runtime import Runtime

PREPARE = "_populate_api_route_state"  # where FastAPI prepares a route when it is first looked for


@pytest.fixture
def prepared(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The routes FastAPI prepares from now on (its own function, watched, not replaced)."""
    if not hasattr(fastapi.routing, PREPARE):
        pytest.skip(f"FastAPI {fastapi.__version__} prepares its routes elsewhere: look for it again")
    seen: list[str] = []
    original = getattr(fastapi.routing, PREPARE)

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(type(args[0]).__name__ if args else "?")
        return original(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, PREPARE, watched)
    return seen


def test_a_started_app_prepares_no_route_on_its_first_requests(runtime: Runtime, prepared: list[str]) -> None:
    viewer = make_person(runtime, "vera@example.com", Role.VIEWER)
    with TestClient(create_app(runtime), headers=viewer.auth) as client:  # runs the lifespan: start-up
        at_start = len(prepared)
        for url in ("/api/v1/runs", "/api/v1/me", "/api/v1/exports", "/exports", "/healthz"):
            client.get(url)
    assert at_start > 100  # every route, at start-up
    assert len(prepared) == at_start  # none while answering


def test_without_start_up_the_first_request_prepares_them(runtime: Runtime, prepared: list[str]) -> None:
    """What start-up spares the first request (and why the test above can fail)."""
    viewer = make_person(runtime, "vera@example.com", Role.VIEWER)
    client = TestClient(create_app(runtime), headers=viewer.auth)  # no lifespan
    client.get("/api/v1/me")
    assert len(prepared) > 100
