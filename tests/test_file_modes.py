"""Data files are private: the data folder 0700, the stores (with SQLite's WAL and SHM), the
profile store and the key file 0600 — whatever the umask, and also for files made before."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from people import make_person
from segmentsync.auth.models import Role
from segmentsync.connections.vault import Vault
from segmentsync.profiles.load import load_file
from segmentsync.runtime import Runtime
from segmentsync.settings import get_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The usual umask (files 0644): what the files got before."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_data_folder_and_its_sqlite_store_are_private(tmp_path: Path) -> None:
    settings = get_settings(data_dir=tmp_path / "data", secret_key=None, database_url=None)
    assert mode(settings.data_dir) == 0o700
    runtime = Runtime.open(settings)  # creates and migrates the store: writes the WAL
    try:
        make_person(runtime, "ada@example.com", Role.ADMIN)
        store = settings.data_dir / "segmentsync.db"
        wal, shm = Path(f"{store}-wal"), Path(f"{store}-shm")
        assert wal.exists()
        assert shm.exists()
        assert [mode(store), mode(wal), mode(shm)] == [0o600] * 3
        runtime.vault.encrypt({"api_key": "secret"})  # the key file, made on first use
        assert mode(settings.data_dir / "secret.key") == 0o600
    finally:
        runtime.close()


def test_files_made_before_are_made_private(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    store = data_dir / "segmentsync.db"
    shutil.copyfile(request.getfixturevalue("_sqlite_template"), store)
    (data_dir / "secret.key").write_bytes(Fernet.generate_key())
    assert mode(store) == mode(data_dir / "secret.key") == 0o644
    settings = get_settings(data_dir=data_dir, secret_key=None, database_url=None)
    runtime = Runtime.open(settings)
    try:
        make_person(runtime, "ada@example.com", Role.ADMIN)
        assert mode(data_dir) == 0o700
        assert mode(store) == mode(Path(f"{store}-wal")) == 0o600
        Vault.from_settings(settings)
        assert mode(data_dir / "secret.key") == 0o600
    finally:
        runtime.close()


def test_the_profile_store_is_private(tmp_path: Path) -> None:
    settings = get_settings(data_dir=tmp_path / "data", secret_key=None, database_url=None)
    csv_file = tmp_path / "profiles.csv"
    csv_file.write_text("profile_id,email\n1,a@example.com\n", encoding="utf-8")
    store = settings.data_dir / "profiles.duckdb"
    load_file(store, csv_file)
    assert mode(store) == 0o600
