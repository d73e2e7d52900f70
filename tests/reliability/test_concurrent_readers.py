"""Many API clients at once against a real server (uvicorn on a free port) whose metadata store has
few connections: every request is answered, none fails for want of a connection.

Found by the load benchmark: with more concurrent requests than pooled connections, a dependency
doing database work *on the event loop* blocked it while waiting for a connection, and the
requests holding the connections could not finish without the loop: the server stood still until
the pool's timeout, then answered 500s, over and over (benchmarks/bench_load.py, docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn

from exports.world import World
from segmentsync.api.app import create_app
from segmentsync.db import create_engine, session_factory
from segmentsync.runtime import Runtime

from .scenario import drive, make_export, start_run

CLIENTS = 40
POOL = 2  # connections: far fewer than the clients
POOL_TIMEOUT = 10  # seconds a request may wait for one


@pytest.fixture
def small_pool(world: World) -> Iterator[Runtime]:
    url = world.runtime.settings.resolved_database_url
    engine = create_engine(url, pool_size=POOL, max_overflow=0, pool_timeout=POOL_TIMEOUT)
    runtime = Runtime(
        settings=world.runtime.settings,
        engine=engine,
        sessions=session_factory(engine),
        readers=session_factory(engine, read_only=True),
    )
    yield runtime
    engine.dispose()


@pytest.fixture
def server(small_pool: Runtime) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(small_pool), host="127.0.0.1", port=port, log_config=None)
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uvicorn_server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uvicorn_server.should_exit = True
    thread.join(timeout=30)  # a server that stood still must not hang the suite (a daemon thread)


async def _read(base: str, token: str, run_id: int) -> list[int]:
    headers = {"Authorization": f"Bearer {token}"}
    paths = [
        "/api/v1/runs",
        f"/api/v1/runs/{run_id}",
        f"/api/v1/runs/{run_id}/rows?limit=20",
        "/api/v1/exports",
    ]
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=4 * POOL_TIMEOUT) as client:
        reads = asyncio.gather(*(client.get(paths[n % len(paths)]) for n in range(CLIENTS)))
        try:
            answers = await asyncio.wait_for(reads, timeout=3 * POOL_TIMEOUT)
        except TimeoutError:
            return [0]  # the server stood still
    return [answer.status_code for answer in answers]


def test_more_clients_than_connections_are_all_answered(world: World, server: str) -> None:
    run, _ = drive(world.runtime, start_run(world, make_export(world, "campaign_monitor")))
    # In a thread of its own: another test of this process may hold an event loop (Playwright's).
    with ThreadPoolExecutor(1) as pool:
        statuses = pool.submit(asyncio.run, _read(server, world.admin.token, run.id)).result()
    assert statuses == [200] * CLIENTS, statuses
