"""How a destination signs its requests: an API key (HTTP Basic) or OAuth tokens (Bearer).

``BearerAuth`` refreshes the access token shortly before it expires, or when the platform says
it expired (``refresh``). Refreshes are serialized across threads: the first thread refreshes,
the others find the token already changed and just repeat their request. New tokens go to
``on_tokens`` *before* anything uses them; if that fails, the connection is dead (a Constant
Contact refresh token is single-use) and every later request raises ``ConfigError``.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from segmentsync.destinations.base import OnTokens, TokenSet
from segmentsync.errors import ConfigError
from segmentsync.observe import metrics

Refresher = Callable[[str], TokenSet]  # refresh token -> new tokens


class Auth(Protocol):
    def headers(self) -> tuple[dict[str, str], str]:
        """Headers to sign one request, and the identity of the token used (for ``refresh``)."""
        ...

    def refresh(self, stale: str) -> bool:
        """The token ``stale`` was refused as expired: get a new one. False if impossible."""
        ...


class BasicAuth:
    """Campaign Monitor API key: HTTP Basic with the key as user name and "x" as password."""

    def __init__(self, api_key: str) -> None:
        token = base64.b64encode(f"{api_key}:x".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}

    def headers(self) -> tuple[dict[str, str], str]:
        return self._headers, "api_key"

    def refresh(self, stale: str) -> bool:
        return False


class BearerAuth:
    def __init__(
        self,
        *,
        access_token: str,
        refresh_token: str | None,
        expires_at: datetime | None,
        refresher: Refresher | None,
        on_tokens: OnTokens | None,
        clock: Callable[[], float],
        margin: float,
        platform: str,
    ) -> None:
        self._access = access_token
        self._refresh_token = refresh_token
        self._expires_at = expires_at.timestamp() if expires_at else None
        self._refresher = refresher
        self._on_tokens = on_tokens
        self._clock = clock
        self._margin = margin
        self._platform = platform
        self._label = platform.lower().replace(" ", "_")  # "Constant Contact": constant_contact
        self._lock = threading.Lock()
        self._dead: ConfigError | None = None
        self.refreshes = 0  # how many times this instance refreshed (for tests and logs)

    def headers(self) -> tuple[dict[str, str], str]:
        if self._dead:
            raise self._dead
        token = self._access
        expiring = self._expires_at is not None and self._clock() >= self._expires_at - self._margin
        if expiring and self._refresher and self._refresh_token:
            self.refresh(token)
            token = self._access
        return {"Authorization": f"Bearer {token}"}, token

    def refresh(self, stale: str) -> bool:
        with self._lock:
            if self._dead:
                raise self._dead
            if self._access != stale:
                return True  # another thread refreshed meanwhile
            if not (self._refresher and self._refresh_token):
                metrics.token_refresh(self._label, "impossible")
                return False
            try:
                tokens = self._refresher(self._refresh_token)
            except Exception:
                metrics.token_refresh(self._label, "refused")
                raise
            if self._on_tokens is not None:
                try:
                    self._on_tokens(tokens)
                except Exception as exc:  # whatever failed, the new tokens are not saved
                    metrics.token_refresh(self._label, "not_saved")
                    self._dead = ConfigError(
                        "%(platform)s: the refreshed OAuth tokens could not be saved (%(name)s: %(exc)s); re-authenticate the connection",
                        params={"platform": self._platform, "name": exc.__class__.__name__, "exc": exc},
                        code="tokens_not_saved",
                    )
                    raise self._dead from exc
            self._access = tokens.access_token
            self._refresh_token = tokens.refresh_token
            self._expires_at = tokens.expires_at.astimezone(UTC).timestamp()
            self.refreshes += 1
            metrics.token_refresh(self._label, "ok")
            return True
