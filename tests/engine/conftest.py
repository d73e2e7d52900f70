"""Fixtures for the run engine tests: the world of the export tests (users, profiles, segments,
connections to the sandbox)."""

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
    return build_world(runtime, sandbox)
