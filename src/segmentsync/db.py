"""Metadata store: engine and session factory, the declarative base, migrations.

SQLite (WAL) is the embedded default; PostgreSQL (psycopg 3) is the production store for
several workers. Alembic migrations run on start (:func:`upgrade`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from importlib import import_module
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from segmentsync import files

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
READ_ONLY = "segmentsync_read_only"  # execution option: a session that only reads
MODEL_MODULES = (
    "segmentsync.auth.models",
    "segmentsync.connections.models",
    "segmentsync.segments.models",
    "segmentsync.exports.models",
    "segmentsync.scheduling.models",
    "segmentsync.exports.idempotency",
    "segmentsync.destinations.shared_limits",
    "segmentsync.notifications.models",
    "segmentsync.counts",
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


def str_enum(cls: type[StrEnum]) -> sa.Enum:
    """A column type storing a StrEnum's values (not its names) as plain strings."""
    return sa.Enum(cls, native_enum=False, length=30, values_callable=lambda e: [m.value for m in e])


def utcnow() -> datetime:
    return datetime.now(UTC)


def database_now(session: Session) -> datetime:
    """The metadata store's clock, in UTC: leases, retries and schedules are timed by it, so that
    workers whose own clocks disagree still agree on when a lease expires or a run is due.
    PostgreSQL: ``clock_timestamp()`` (the server's clock, not the transaction's start);
    SQLite: ``strftime('now')`` (the clock of the machine that holds the file)."""
    if session.get_bind().dialect.name == "postgresql":
        value: datetime = session.scalar(sa.text("SELECT clock_timestamp()"))
        return value.astimezone(UTC)
    text = session.scalar(sa.text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# A transaction of the run engine that holds the run's row (a claim, a heartbeat, a checkpoint) and
# then hears nothing from its worker this long is ended by PostgreSQL: a worker cut off from the
# store mid-transaction (no reset, just silence) would otherwise keep the row locked, and no other
# worker could claim the run once the lease expired.
IDLE_IN_TRANSACTION_SECONDS = 5


def release_locks_if_cut(session: Session) -> None:
    """In this transaction (PostgreSQL): end it if the client goes silent mid-way."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sa.text(f"SET LOCAL idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_SECONDS}s'")
        )


# SQLSTATEs of a PostgreSQL server that is away for now: a connection exception (class 08), shut
# down by an administrator or a crash (57P01, 57P02), starting up or recovering (57P03).
_AWAY_STATES = ("08", "57P01", "57P02", "57P03")


def store_away(exc: sa.exc.DBAPIError) -> bool:
    """The metadata store dropped the connection (restarted, terminated it), refused a new one while
    it restarts, or stayed locked past the busy timeout (SQLite): the store is briefly away, nothing
    is wrong with the work itself."""
    if exc.connection_invalidated or "database is locked" in str(exc.orig):
        return True
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    state = getattr(exc.orig, "sqlstate", None)
    if state is None:  # psycopg without a server's answer: the connection failed or was refused
        return type(exc.orig).__module__.startswith("psycopg")
    return str(state).startswith(_AWAY_STATES)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def contains(column: Any, text: str) -> sa.ColumnElement[bool]:
    """``column`` contains ``text``, case-insensitively and literally: every search is built here.

    ``%``, ``_`` and the escape character match only themselves (a search for ``%`` finds the
    names with a percent sign, not every name): SQLAlchemy's ``autoescape`` escapes them.
    """
    return sa.func.lower(column).contains(text.strip().lower(), autoescape=True)


def same_name(column: Any, name: str) -> sa.ColumnElement[bool]:
    """``column`` holds ``name``, ignoring case: every look-up and uniqueness check of a name.

    The exact name always matches: the stores' ``lower()`` differ beyond ASCII (SQLite folds only
    A-Z, so ``lower('É')`` stays ``'É'`` while Python gives ``'é'``), and a check that missed an
    exact duplicate let the insert fail on the unique index instead of answering "taken".
    """
    return sa.or_(column == name, sa.func.lower(column) == name.lower())


ID_MAX = 2**63 - 1  # the largest id both stores' BIGINT can hold


def id_from_text(text: str) -> int | None:
    """An id as typed (a form field, a command-line name-or-id): ASCII digits only, else None.

    ``str.isdigit`` is true for ``"²"`` and ``"١"``, which ``int`` refuses or reads as another
    number; ids that no column can hold are None too (never an overflow in the database).
    """
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    number = int(text)
    return number if number <= ID_MAX else None


def import_models() -> sa.MetaData:
    """Import every model module so that ``Base.metadata`` knows all tables."""
    for name in MODEL_MODULES:
        import_module(name)
    return Base.metadata


# How long a SQLite writer waits for another's lock before "database is locked".
SQLITE_BUSY_MS = 30_000


def create_engine(url: str, *, sqlite_busy_ms: int = SQLITE_BUSY_MS, **kwargs: Any) -> Engine:
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": sqlite_busy_ms / 1000, "check_same_thread": False})
        engine = sa.create_engine(url, **kwargs)
        path = sqlite_file(engine.url)
        if path is not None and path.parent.is_dir():
            files.private_file(path, create=True)  # before SQLite creates it (and its WAL) world-readable
        event.listen(engine, "connect", partial(_sqlite_pragmas, busy_ms=sqlite_busy_ms))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def sqlite_file(url: sa.URL) -> Path | None:
    """The file of a SQLite store (None: in memory)."""
    name = url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, busy_ms: int = SQLITE_BUSY_MS) -> None:
    # Let SQLAlchemy issue BEGIN itself (see _sqlite_begin) so that transactions are real.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    for _, name, path in cursor.execute("PRAGMA database_list").fetchall():
        if name == "main" and path:  # a store made before files were private: its WAL and SHM too
            files.private_files(*(Path(path + suffix) for suffix in ("", "-wal", "-shm")))
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    # IMMEDIATE takes the write lock up front: two writers queue instead of failing when one
    # read before the other wrote. Read-only sessions (READ_ONLY option) don't take it.
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN DEFERRED")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions for the store; ``read_only`` ones never wait for (or take) SQLite's write lock."""
    bind = engine.execution_options(**{READ_ONLY: True}) if read_only else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on error."""
    with factory() as session, session.begin():
        yield session


def alembic_config(engine: Engine) -> Any:
    # lazy: Alembic costs 0.14 s CPU of every command's start-up; a store at head never needs it
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


MIGRATION_LOCK = 0x5E6_5E6C  # the PostgreSQL advisory lock that serialises migrations
# The newest migration (tests/test_migrations.py checks that it is Alembic's head): a store already
# there is not handed to Alembic at all, which saves every process start ≈ 0.2 s of importing it
# and reading the migration scripts.
SCHEMA_HEAD = "0013"


def at_head(engine: Engine) -> bool:
    """Whether the store's schema is at :data:`SCHEMA_HEAD` (False for a new database)."""
    try:
        with engine.connect() as connection:
            versions = list(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    except sa.exc.DBAPIError:  # no version table yet
        return False
    return versions == [SCHEMA_HEAD]


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent; safe with processes starting at once)."""
    if at_head(engine):
        return
    # lazy: Alembic costs 0.14 s CPU of every command's start-up; a store at head never needs it
    from alembic import command

    if engine.dialect.name != "postgresql":  # SQLite: BEGIN IMMEDIATE serialises them already
        command.upgrade(alembic_config(engine), "head")
        return
    with engine.connect() as lock:
        lock.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        try:
            command.upgrade(alembic_config(engine), "head")
        finally:
            lock.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            lock.commit()
