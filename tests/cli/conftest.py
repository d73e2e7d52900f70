"""Fixtures for the command-line conventions: the world of the export tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.runner import build_commands_once
from exports.world import World, build_world, sandbox_settings  # tests/ is on sys.path (rootdir)
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.settings import Settings


@pytest.fixture(autouse=True)
def _commands_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    build_commands_once(monkeypatch)


@pytest.fixture
def settings(tmp_path: Path, sandbox: Sandbox) -> Settings:
    return sandbox_settings(tmp_path, sandbox)


@pytest.fixture
def world(runtime: Runtime, sandbox: Sandbox) -> World:
    return build_world(runtime, sandbox)
