"""The wiring of one process: settings, the metadata store and the shared services.

Built once at the edge (CLI command, app factory, worker, test fixture) with :meth:`Runtime.open`
and passed down; services take what they need from it explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from segmentsync.connections.vault import Vault
from segmentsync.db import create_engine, session_factory, upgrade, utcnow
from segmentsync.settings import Settings, get_settings

if TYPE_CHECKING:
    # lazy: Ibis costs 0.47 s CPU of importing the runtime; the API loads it on first use
    from segmentsync.profiles.source import ProfileSource


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    readers: sessionmaker[Session]  # read-only sessions: on SQLite they never wait for writers
    clock: Callable[[], datetime] = field(default=utcnow)

    @classmethod
    def open(cls, settings: Settings | None = None, *, migrate: bool = True) -> Runtime:
        settings = settings or get_settings()
        engine = create_engine(
            settings.resolved_database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_pool_overflow,
            pool_timeout=settings.database_pool_timeout_seconds,
        )
        if migrate:
            upgrade(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            readers=session_factory(engine, read_only=True),
        )

    @cached_property
    def vault(self) -> Vault:
        return Vault.from_settings(self.settings)

    @cached_property
    def profiles(self) -> ProfileSource:
        # lazy: Ibis costs 0.47 s CPU of importing the runtime; the API loads it on first use
        from segmentsync.profiles.source import ProfileSource

        return ProfileSource.from_settings(self.settings)

    def close(self) -> None:
        if "profiles" in self.__dict__:
            self.profiles.close()
        self.engine.dispose()
