"""Fixtures for configuration as code: the world of the export tests (deployment A) and a second,
empty deployment (B) on the same kind of store, the same profiles and the same sandbox."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import SecretStr

from cli.runner import build_commands_once
from exports.world import World, build_world, sandbox_settings  # tests/ is on sys.path (rootdir)
from segmentsync.api import app as app_module
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.settings import Settings
from stores import migrated_database, truncate_postgres


@pytest.fixture(autouse=True)
def _commands_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    build_commands_once(monkeypatch)


@pytest.fixture
def settings(tmp_path: Path, sandbox: Sandbox) -> Settings:
    return sandbox_settings(tmp_path, sandbox)


@pytest.fixture
def world(runtime: Runtime, sandbox: Sandbox) -> World:
    return build_world(runtime, sandbox)


@pytest.fixture(scope="session")
def _second_postgres(_postgres_database: str) -> Iterator[str]:
    """A second PostgreSQL database of this test process (the empty deployment)."""
    worker, pid = _postgres_database.rsplit("_", 2)[1:]  # segmentsync_test_<worker>_<pid>
    with migrated_database(f"segmentsync_test_b_{worker}_{pid}") as url:  # cleaned up like it if left
        yield url


@pytest.fixture
def empty_store_url(request: pytest.FixtureRequest, store_url: str, tmp_path: Path) -> str:
    """Deployment B's store: empty, of the same kind as ``store_url``."""
    if store_url.startswith("sqlite"):
        path = tmp_path / "deployment-b.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("_second_postgres")
    truncate_postgres(url)
    return url


@pytest.fixture
def empty_runtime(world: World, empty_store_url: str) -> Iterator[Runtime]:
    """Deployment B: its own store and secret key; the same profiles (data dir) and sandbox."""
    settings = world.runtime.settings.model_copy(
        update={"database_url": empty_store_url, "secret_key": SecretStr(Fernet.generate_key().decode())}
    )
    runtime = Runtime.open(settings, migrate=False)
    yield runtime
    runtime.close()


@pytest.fixture
def client(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    # The REST API is under test here; the web UI mounted on the same app has its own tests.
    monkeypatch.setattr(app_module, "WEB_MODULE", "segmentsync.web.not_mounted_in_these_tests")
    return TestClient(app_module.create_app(runtime))
