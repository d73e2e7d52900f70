"""The destination of a stored connection, with OAuth tokens that survive refreshes and races.

:func:`destination_for` is what the run engine and the list picker use. Refreshed tokens are
written by :class:`TokenKeeper` in a transaction of their own, before anything uses them::

    UPDATE connections SET secrets=:new, secrets_version=:v+1 WHERE id=:id AND secrets_version=:v

(a Constant Contact refresh token is single-use: losing the new one kills the connection). When
the update matches no row, someone else changed the credentials first (an admin re-authenticated,
or another process refreshed); and when a refresh is refused because another process spent the
refresh token a moment earlier, the stored tokens are newer than ours. In both cases
:class:`ConnectionDestination` reloads the stored credentials and repeats the call with them.

Do not hold a metadata-store transaction open while a destination is in use: on SQLite every
transaction takes the write lock, and a token refresh must commit in its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa

from segmentsync.connections import access
from segmentsync.connections.models import Connection
from segmentsync.destinations import Tuning, create_destination
from segmentsync.destinations.base import (
    AccountInfo,
    Destination,
    FieldInfo,
    FieldType,
    ListInfo,
    Member,
    RenderedBatch,
    RowResult,
    TokenSet,
)
from segmentsync.destinations.templates import RowTemplate, Value
from segmentsync.errors import ConfigError
from segmentsync.logs import register_secret
from segmentsync.runtime import Runtime

log = logging.getLogger(__name__)
T = TypeVar("T")
# How long a refused refresh waits for another process's refreshed tokens to be committed.
RACE_GRACE_SECONDS = 3.0
RACE_POLL_SECONDS = 0.1
SAVE_ATTEMPTS = 3


class TokensSuperseded(Exception):
    """The stored credentials changed since they were loaded; ours must not overwrite them."""


class TokenKeeper:
    """``on_tokens`` of one stored connection: persist refreshed tokens, guarded by version."""

    def __init__(self, runtime: Runtime, connection: Connection) -> None:
        self._runtime = runtime
        self.connection_id = connection.id
        self.version = connection.secrets_version
        self._secrets = runtime.vault.decrypt(connection.secrets)

    def __call__(self, tokens: TokenSet) -> None:
        register_secret(tokens.access_token)
        register_secret(tokens.refresh_token)
        new = {**self._secrets, "access_token": tokens.access_token, "refresh_token": tokens.refresh_token}
        statement = (
            sa.update(Connection)
            .where(Connection.id == self.connection_id, Connection.secrets_version == self.version)
            .values(
                secrets=self._runtime.vault.encrypt(new),
                secrets_version=self.version + 1,
                token_expires_at=tokens.expires_at,
                updated_at=self._runtime.clock(),
            )
        )
        updated = self._save(statement)
        if updated != 1:
            raise TokensSuperseded(f"the credentials of connection {self.connection_id} changed meanwhile")
        self.version += 1
        self._secrets = new
        log.info("connection %s: OAuth tokens refreshed and saved", self.connection_id)

    def _save(self, statement: sa.Update) -> int:
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            try:
                with self._runtime.engine.begin() as conn:
                    return conn.execute(statement).rowcount
            except sa.exc.OperationalError:  # a busy or restarting store: the tokens are worth a retry
                if attempt == SAVE_ATTEMPTS:
                    raise
                time.sleep(0.2 * attempt)
        raise AssertionError("unreachable")


class ConnectionDestination:
    """A :class:`Destination` that follows the stored credentials of its connection."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        connection: Connection,
        transport: httpx.BaseTransport | None = None,
        tuning: Tuning | None = None,
    ) -> None:
        self._runtime = runtime
        self._transport = transport
        self._tuning = tuning
        self.connection_id = connection.id
        self._lock = threading.Lock()
        self._retired: list[Destination] = []
        self._inner, self._keeper = self._open(connection)
        self.type = self._inner.type
        self.limits = self._inner.limits

    def _open(self, connection: Connection) -> tuple[Destination, TokenKeeper]:
        settings = self._runtime.settings
        keeper = TokenKeeper(self._runtime, connection)
        credentials = access.with_app(
            access.credentials_for(vault=self._runtime.vault, connection=connection),
            settings,
            connection.type,
        )
        api_url, oauth_url = access.platform_urls(settings, connection.type, connection.settings)
        inner = create_destination(
            connection.type, credentials=credentials, api_url=api_url, oauth_url=oauth_url,
            on_tokens=keeper, transport=self._transport, tuning=self._tuning,
            limit_store=access.limit_store(self._runtime),
        )  # fmt: skip
        return inner, keeper

    def _call(self, work: Callable[[Destination], T]) -> T:
        with self._lock:
            inner, keeper = self._inner, self._keeper
        try:
            return work(inner)
        except ConfigError as exc:
            if not access.is_auth_failure(exc) or not self._follow(
                inner, keeper, access.is_refresh_refusal(exc)
            ):
                raise
        with self._lock:
            inner = self._inner
        return work(inner)

    def _follow(self, failed: Destination, keeper: TokenKeeper, racing: bool) -> bool:
        """Switch to newer stored credentials, if there are (or, when ``racing``, soon will be) any."""
        with self._lock:
            if self._inner is not failed:  # another thread switched already
                return True
            newer = self._newer(keeper.version, wait=racing)
            if newer is None:
                return False
            self._retired.append(failed)  # other threads may still be using it; closed at the end
            self._inner, self._keeper = self._open(newer)
            log.info("connection %s: continuing with credentials saved elsewhere", self.connection_id)
            return True

    def _newer(self, version: int, *, wait: bool) -> Connection | None:
        """The stored connection if its credentials are newer than ``version``.

        ``wait``: our refresh was refused, perhaps because another process spent the refresh
        token a moment ago and is saving the new tokens right now; give it a little time.
        """
        deadline = time.monotonic() + (RACE_GRACE_SECONDS if wait else 0)
        while True:
            with self._runtime.sessions() as session:
                row = session.get(Connection, self.connection_id)
                if row is None or row.secrets_version > version:
                    return row
            if time.monotonic() >= deadline:
                return None
            time.sleep(RACE_POLL_SECONDS)

    # ---------------------------------------------------------------- the Destination protocol

    def pushback(self) -> int:
        return self._inner.pushback()  # a replaced destination starts again from 0: never "more"

    def verify(self) -> AccountInfo:
        return self._call(lambda d: d.verify())

    def lists(self) -> list[ListInfo]:
        return self._call(lambda d: d.lists())

    def describe_list(self, list_id: str) -> ListInfo:
        return self._call(lambda d: d.describe_list(list_id))

    def custom_fields(self, list_id: str) -> list[FieldInfo]:
        return self._call(lambda d: d.custom_fields(list_id))

    def create_custom_field(self, list_id: str, name: str, type: FieldType, **kwargs: Any) -> FieldInfo:
        return self._call(lambda d: d.create_custom_field(list_id, name, type, **kwargs))

    def upsert(
        self, list_id: str, members: Sequence[Member], *, resubscribe: bool = False
    ) -> list[RowResult]:
        # Repeating is safe: an upsert adds or updates.
        return self._call(lambda d: d.upsert(list_id, members, resubscribe=resubscribe))

    def row_template(
        self, list_id: str, values: Sequence[tuple[str, Value]], *, consent: Value | None = None
    ) -> RowTemplate:
        return self._call(lambda d: d.row_template(list_id, values, consent=consent))

    def upsert_rows(
        self, list_id: str, batch: RenderedBatch, *, resubscribe: bool = False
    ) -> dict[int, RowResult]:
        return self._call(lambda d: d.upsert_rows(list_id, batch, resubscribe=resubscribe))

    def remove(self, list_id: str, emails: Sequence[str], *, mode: str = "delete") -> list[RowResult]:
        return self._call(lambda d: d.remove(list_id, emails, mode=mode))

    def close(self) -> None:
        with self._lock:
            for destination in [*self._retired, self._inner]:
                destination.close()
            self._retired.clear()

    def __getattr__(self, name: str) -> Any:
        # Anything beyond the protocol (statistics, tuning) comes from the current destination.
        if name.startswith("_"):  # not set yet (during __init__): no recursion through _inner
            raise AttributeError(name)
        return getattr(self._inner, name)


def destination_for(
    *,
    runtime: Runtime,
    connection: Connection,
    transport: httpx.BaseTransport | None = None,
    tuning: Tuning | None = None,
) -> Destination:
    """The destination of a stored connection, with its settings' URLs and token persistence.

    ``tuning`` (timeouts, retries) is the platform's default unless given (tests shorten it).
    """
    return ConnectionDestination(runtime=runtime, connection=connection, transport=transport, tuning=tuning)
