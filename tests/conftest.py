"""Shared fixtures: the metadata store on SQLite and PostgreSQL, the sandbox, a runtime.

* ``store_url`` is parametrized over both databases: a test that uses it (directly or through
  ``runtime``) runs on SQLite and on PostgreSQL. PostgreSQL is skipped, with the reason shown,
  only where no server is reachable at ``SEGMENTSYNC_TEST_POSTGRES`` (default 127.0.0.1:5432).
* ``sandbox`` is one sandbox process per test session (per xdist worker), reset before each test
  that asks for it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from segmentsync.db import create_engine, upgrade
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.settings import Settings
from stores import POSTGRES_SERVER, migrated_database, truncate_postgres


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _postgres_reachable() -> str | None:
    """None if reachable, else the reason."""
    try:
        engine = create_engine(f"{POSTGRES_SERVER}/postgres", connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # any failure to connect means: not reachable here
        return f"PostgreSQL not reachable at {POSTGRES_SERVER}: {exc.__class__.__name__}"
    return None


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _postgres_database() -> Iterator[str]:
    reason = _postgres_reachable()
    if reason:
        pytest.skip(reason)
    # One database per test process: parallel pytest runs on one machine never share one.
    name = f"segmentsync_test_{_worker()}_{os.getpid()}"
    with migrated_database(name, abandoned=("segmentsync_test_", "segmentsync_profiles_test_")) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty metadata store: SQLite and PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "segmentsync.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("_postgres_database")
    truncate_postgres(url)
    return url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    return Settings(data_dir=data_dir, secret_key=Fernet.generate_key().decode())


@pytest.fixture
def runtime(settings: Settings, store_url: str) -> Iterator[Runtime]:
    settings.database_url = store_url
    rt = Runtime.open(settings, migrate=False)  # the store is migrated already
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def _sandbox_process() -> Iterator[Sandbox]:
    with Sandbox.start() as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(_sandbox_process: Sandbox) -> Sandbox:
    """The sandbox, reset: no clients, accounts, lists, faults or limits from other tests."""
    _sandbox_process.reset()
    return _sandbox_process
