"""Fixtures for the webhook, alert and e-mail tests: the export tests' world, with settings that
let webhooks reach loopback receivers and retry at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from exports.world import World, build_world, sandbox_settings  # tests/ is on sys.path (rootdir)
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, sandbox: Sandbox) -> Settings:
    settings = sandbox_settings(tmp_path, sandbox)
    settings.webhooks_allow_private = True  # the receivers listen on 127.0.0.1
    settings.webhooks_retry_seconds = "0,0,0"  # four attempts, each due at once
    settings.webhooks_timeout_seconds = 1.0
    return settings


@pytest.fixture
def world(runtime: Runtime, sandbox: Sandbox) -> World:
    return build_world(runtime, sandbox)
