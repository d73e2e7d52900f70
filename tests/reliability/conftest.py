"""Fixtures for the reliability and security suite: the world of the export tests (users of every
role, connections to the sandbox with a list each, segments), on SQLite and PostgreSQL; a
PostgreSQL server of the suite's own (to restart) and a second network host (to cut off)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exports.world import World, build_world, sandbox_settings  # tests/ is on sys.path (rootdir)
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.settings import Settings

from . import netns, own_postgres


@pytest.fixture
def settings(tmp_path: Path, sandbox: Sandbox) -> Settings:
    return sandbox_settings(tmp_path, sandbox)


@pytest.fixture
def world(runtime: Runtime, sandbox: Sandbox) -> World:
    world = build_world(runtime, sandbox)
    # Constant Contact's activity speed and 4 requests/s are the destinations' tests' business.
    sandbox.cc_faults(requests_per_second=None, instant_activities=True)
    return world


@pytest.fixture(scope="session")
def own_server() -> Iterator[own_postgres.OwnPostgres]:
    """A PostgreSQL cluster of this test process's own (initdb, about 2 s), removed at the end."""
    reason = own_postgres.unavailable()
    if reason:
        pytest.skip(reason)
    server = own_postgres.OwnPostgres()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def network_host() -> Iterator[netns.NetworkHost]:
    """A network namespace joined by a veth pair; removed at the end even when a test failed."""
    reason = netns.unavailable()
    if reason:
        pytest.skip(reason)
    host = netns.NetworkHost()
    try:
        host.create()
    except RuntimeError as exc:  # e.g. no network namespaces in this container, or no pfifo qdisc
        pytest.skip(f"cannot make a network namespace with a veth pair here: {exc}")
    try:
        yield host
    finally:
        host.remove()
