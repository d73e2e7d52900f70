"""Fixtures for the export and run tests (the world is built in ``world.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from segmentsync.api import app as app_module
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.settings import Settings

from .world import World, build_world, sandbox_settings


@pytest.fixture
def settings(tmp_path: Path, sandbox: Sandbox) -> Settings:
    return sandbox_settings(tmp_path, sandbox)


@pytest.fixture
def world(runtime: Runtime, sandbox: Sandbox) -> World:
    return build_world(runtime, sandbox)


@pytest.fixture
def app(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    # The REST API is under test here; the web UI mounted on the same app has its own tests.
    monkeypatch.setattr(app_module, "WEB_MODULE", "segmentsync.web.not_mounted_in_these_tests")
    return app_module.create_app(runtime)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)
