"""A burst of requests that finds every store connection of the process in use gets a clear,
retryable 503 (never a 500), and the web process answers only as many requests at once as its
setting allows (anyio's default of 40 threads would wait on far fewer connections)."""

from __future__ import annotations

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient

from people import make_person
from segmentsync.api.app import create_app
from segmentsync.auth.models import Role
from segmentsync.runtime import Runtime
from segmentsync.settings import Settings


@pytest.fixture
def small_pool(settings: Settings, store_url: str) -> Runtime:
    settings.database_url = store_url
    settings.database_pool_size = 1
    settings.database_pool_overflow = 0
    settings.database_pool_timeout_seconds = 0.2
    settings.api_threads = 3
    return Runtime.open(settings, migrate=False)


def test_no_free_connection_answers_503_with_retry_after(small_pool: Runtime) -> None:
    viewer = make_person(small_pool, "victor@example.com", Role.VIEWER)
    client = TestClient(create_app(small_pool), headers=viewer.auth, raise_server_exceptions=False)
    assert client.get("/api/v1/segments").status_code == 200
    held = small_pool.engine.connect()  # the pool's only connection, busy elsewhere (a run's write)
    try:
        answer = client.get("/api/v1/segments")
    finally:
        held.close()
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "5"
    assert answer.json()["error"]["code"] == "store_busy"
    assert client.get("/api/v1/segments").status_code == 200  # and it serves again once one is free
    small_pool.close()


def test_the_app_runs_as_many_requests_at_once_as_the_setting_says(small_pool: Runtime) -> None:
    seen = []
    app = create_app(small_pool)

    @app.get("/tokens")
    async def tokens() -> dict[str, float]:  # on the event loop, where the limiter lives
        seen.append(anyio.to_thread.current_default_thread_limiter().total_tokens)
        return {}

    with TestClient(app) as client:  # the lifespan runs: it sets the limit
        assert client.get("/tokens").status_code == 200
    assert seen == [3]
    small_pool.close()
