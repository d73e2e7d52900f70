"""Secrets at rest: Fernet encryption with key rotation (MultiFernet).

The key comes from ``SEGMENTSYNC_SECRET_KEY`` (comma-separated Fernet keys, newest first, so an
old key keeps decrypting while :meth:`Vault.rotate` re-encrypts with the new one) or, when that
is not set, from a generated key file (mode 0600) in the data dir.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from segmentsync import files
from segmentsync.errors import ConfigError
from segmentsync.settings import Settings

KEY_FILE = "secret.key"


class Vault:
    def __init__(self, keys: list[bytes]) -> None:
        self._keys = keys
        if not keys:
            raise ConfigError("no secret key configured", code="no_secret_key")
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except ValueError as exc:
            raise ConfigError(
                "SEGMENTSYNC_SECRET_KEY must hold Fernet keys (32 url-safe base64 bytes each), "
                "comma-separated, newest first",
                code="bad_secret_key",
            ) from exc

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        if settings.secret_key is not None:
            raw = settings.secret_key.get_secret_value()
            return cls([part.strip().encode() for part in raw.split(",") if part.strip()])
        return cls([_key_file(settings.data_dir)])

    def encrypt(self, secrets: dict[str, Any]) -> str:
        return self._fernet.encrypt(orjson.dumps(secrets)).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            value: dict[str, Any] = orjson.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ConfigError(
                "stored secrets cannot be decrypted with the configured key(s); "
                "was SEGMENTSYNC_SECRET_KEY changed without keeping the old key?",
                code="undecryptable_secrets",
            ) from exc
        return value

    def fingerprint_material(self) -> bytes:
        """Key material for deriving other secrets (session signing): the newest key."""
        return self._keys[0]

    def rotate(self, token: str) -> str:
        """Re-encrypt with the newest key (after adding a key in front of the old one)."""
        return self._fernet.rotate(token.encode()).decode()


def _key_file(data_dir: Path) -> bytes:
    path = data_dir / KEY_FILE
    if not path.exists():
        files.private_dir(data_dir)
        # O_EXCL: two processes starting at once cannot both write a key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
    files.private_file(path)  # a key file copied in with a looser mode
    return path.read_bytes().strip()
