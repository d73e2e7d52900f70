"""The foundation: the vault round-trips (the schema tests are in test_migrations.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from segmentsync.connections.vault import Vault
from segmentsync.errors import ConfigError
from segmentsync.settings import Settings


def test_vault_round_trip_and_rotation() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = Vault([old]).encrypt({"api_key": "s3cret"})
    assert "s3cret" not in token
    both = Vault([new, old])
    assert both.decrypt(token) == {"api_key": "s3cret"}
    rotated = both.rotate(token)
    assert Vault([new]).decrypt(rotated) == {"api_key": "s3cret"}
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        Vault([new]).decrypt(token)


def test_vault_generates_a_private_key_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = Vault.from_settings(settings).encrypt({"a": 1})
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert Vault.from_settings(settings).decrypt(first) == {"a": 1}


def test_bad_secret_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Fernet keys"):
        Vault.from_settings(Settings(data_dir=tmp_path, secret_key="not-a-key"))
