"""Fixtures for the reliability and security suite: the world of the export tests (users of every
role, connections to the sandbox with a list each, segments), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from exports.world import World, build_world, sandbox_settings  # tests/ is on sys.path (rootdir)
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, sandbox: Sandbox) -> Settings:
    return sandbox_settings(tmp_path, sandbox)


@pytest.fixture
def world(runtime: Runtime, sandbox: Sandbox) -> World:
    world = build_world(runtime, sandbox)
    # Constant Contact's activity speed and 4 requests/s are the destinations' tests' business.
    sandbox.cc_faults(requests_per_second=None, instant_activities=True)
    return world
