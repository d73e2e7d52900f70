"""A burst of requests that finds every store connection of the process in use gets a clear,
retryable 503 (never a 500), and the web process answers only as many requests at once as its
setting allows (anyio's default of 40 threads would wait on far fewer connections)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio.to_thread
import pytest
import sqlalchemy as sa
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


UNREACHABLE = "postgresql://nobody:pg-secret-pw@127.0.0.1:1/none"


def test_a_store_out_of_reach_answers_503_naming_it(settings: Settings) -> None:
    settings.database_url = UNREACHABLE  # nothing listens there: every connection is refused
    runtime = Runtime.open(settings, migrate=False)
    try:
        answer = TestClient(create_app(runtime), raise_server_exceptions=False).get(
            "/api/v1/segments", headers={"Authorization": "Bearer ss_whatever"}
        )
    finally:
        runtime.close()
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "5"
    assert answer.json()["error"]["code"] == "store_unavailable"
    assert "pg-secret-pw" not in answer.text


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_store_that_refuses_new_connections_answers_503_and_serves_again_after(
    runtime: Runtime, store_url: str
) -> None:
    viewer = make_person(runtime, "victor@example.com", Role.VIEWER)
    client = TestClient(create_app(runtime), headers=viewer.auth, raise_server_exceptions=False)
    assert client.get("/api/v1/segments").status_code == 200
    name = sa.make_url(store_url).database
    admin = sa.create_engine(sa.make_url(store_url).set(database="postgres"), isolation_level="AUTOCOMMIT")

    def allow(allowed: bool) -> None:
        with admin.connect() as connection:
            connection.execute(
                sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
            )

    allow(False)  # as when max_connections is reached: the server says no to a new connection
    try:
        runtime.engine.dispose()  # the pool's connections are gone: the next request needs a new one
        answer = client.get("/api/v1/segments")
    finally:
        allow(True)
        admin.dispose()
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "store_unavailable"
    assert client.get("/api/v1/segments").status_code == 200


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_mistake_in_a_query_is_still_a_500_not_a_store_out_of_reach(runtime: Runtime) -> None:
    app = create_app(runtime)

    @app.get("/mistake")
    def mistake() -> None:  # SQLite names a missing table with the same error class as a locked file
        with runtime.engine.connect() as connection:
            connection.execute(sa.text("SELECT nothing FROM no_such_table"))

    answer = TestClient(app, raise_server_exceptions=False).get("/mistake")
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal"


@pytest.fixture
def threads_as_pool(settings: Settings, store_url: str) -> Iterator[Runtime]:
    settings.database_url = store_url
    settings.api_threads = 2
    settings.database_pool_size = 2  # as many connections as threads: what docs/operations.md asks
    settings.database_pool_overflow = 0
    settings.database_pool_timeout_seconds = 2
    runtime = Runtime.open(settings, migrate=False)
    yield runtime
    runtime.close()


def test_a_crowd_larger_than_the_threads_is_served_in_turn_not_stalled(threads_as_pool: Runtime) -> None:
    """Twelve requests at once on two threads and two connections: each signs in on one thread
    hop (taking a connection) and answers on another. Without admission, new requests took both
    threads waiting for a connection while the two holding one waited for a thread, until the
    pool timeout answered 503s."""
    viewer = make_person(threads_as_pool, "victor@example.com", Role.VIEWER)
    client = TestClient(create_app(threads_as_pool), headers=viewer.auth, raise_server_exceptions=False)
    with client, ThreadPoolExecutor(12) as crowd:  # the client's lifespan sets the threads
        answers = list(crowd.map(lambda _: client.get("/api/v1/segments").status_code, range(12)))
    assert answers == [200] * 12
