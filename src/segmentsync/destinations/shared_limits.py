"""One application's rate and daily quota shared by every process, through the metadata store.

Constant Contact counts 4 requests/s and 10,000 requests/day per *application* (client id), not
per process: three workers exporting at once must share one bucket and one count. Each
application has one row in ``platform_limits``:

* ``next_at``: the theoretical arrival time of GCRA (a token bucket as one number): a request
  takes the slot ``max(next_at, now)`` and moves ``next_at`` one interval on; the process then
  sleeps until its slot *outside* the transaction, so waiting holds no lock.
* ``day`` / ``used``: requests counted on that UTC day; ``spent_until``: the platform said the
  quota is spent (or our count reached it): nobody sends before then.

Every change is one short transaction: ``SELECT … FOR UPDATE`` then ``UPDATE`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite (the store's write lock), and "now" is the database's clock, so
workers whose clocks disagree still space their requests correctly. A request costs one such
transaction (figures in docs/reliability.md, "One platform, many workers"). On PostgreSQL it
commits with ``synchronous_commit = off``: a server crash may forget the last few requests'
bookkeeping (a slot or a count), never corrupt it, and a request does not wait for a disk flush.

``pyrate-limiter``'s SQLite and PostgreSQL buckets were considered and declined: they keep one row
per request in a rolling window (no UTC-day quota, no refund of a refused request, no "spent
until midnight" that the platform can announce), need their own connection pool or file lock
beside SQLAlchemy's, create their tables outside the migrations, and use the local clock on
SQLite.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, mapped_column

from segmentsync.db import Base
from segmentsync.destinations.ratelimit import Sleep, next_utc_midnight
from segmentsync.errors import QuotaExceeded, Retriable


class PlatformLimit(Base):
    """The shared rate and daily count of one platform application (see module docstring)."""

    __tablename__ = "platform_limits"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # sha256 of API URL + app
    platform: Mapped[str] = mapped_column(sa.String(30))
    next_at: Mapped[float] = mapped_column(sa.Float)  # epoch seconds, the database's clock
    day: Mapped[str] = mapped_column(sa.String(10))  # UTC date (YYYY-MM-DD) that ``used`` counts
    used: Mapped[int] = mapped_column(sa.Integer)
    spent_until: Mapped[float | None] = mapped_column(sa.Float)


@dataclass(frozen=True)
class LimitStore:
    """Where limits are shared: the metadata store, and the daily quota to enforce there."""

    engine: Engine
    daily_quota: int | None = None  # None: the platform's documented quota


TABLE = sa.Table("platform_limits", Base.metadata)  # PlatformLimit's, as a Core table
Change = Callable[[sa.Row[Any], float], dict[str, object]]  # (the locked row, now) -> new values


def limit_key(api_url: str, application: str) -> str:
    return hashlib.sha256(f"{api_url}\n{application}".encode()).hexdigest()


def _now_sql(engine: Engine) -> sa.ColumnElement[Any]:
    if engine.dialect.name == "postgresql":
        return sa.cast(sa.extract("epoch", sa.func.clock_timestamp()), sa.Float)
    return (sa.func.julianday("now") - 2440587.5) * 86400.0  # SQLite: milliseconds, the OS clock


def _day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).date().isoformat()


class StoreLimits:
    """A token bucket (GCRA) and a daily quota in one ``platform_limits`` row.

    Both the ``Limiter`` (acquire, pause) and the quota (take, refund, spent) of ``ApiClient``:
    ``take`` counts the request *and* reserves its slot in one transaction; ``acquire`` then
    sleeps until that slot (or reserves one if ``take`` was not called first).
    """

    def __init__(
        self, store: LimitStore, *, key: str, platform: str, rate: float, daily: int, sleep: Sleep, name: str
    ) -> None:
        self._engine = store.engine
        self.key = key
        self.platform = platform
        self.interval = 1.0 / rate
        self.limit = store.daily_quota if store.daily_quota is not None else daily
        self.name = name
        self._sleep = sleep
        self._now = _now_sql(store.engine)
        self._local = threading.local()  # the wait of the slot ``take`` reserved, for ``acquire``

    # ------------------------------------------------------------------ the Limiter

    def acquire(self) -> float:
        wait: float | None = getattr(self._local, "wait", None)
        self._local.wait = None
        if wait is None:
            wait = self._change(count=False)
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Nobody, in any process, gets a slot for ``seconds`` (the platform said: too many)."""

        def change(row: sa.Row[Any], now: float) -> dict[str, object]:
            return {"next_at": max(row.next_at, now + seconds)}

        self._transaction(change)

    # ------------------------------------------------------------------ the quota

    def take(self) -> None:
        """Count one request and reserve its slot; QuotaExceeded if the day's quota is spent."""
        self._local.wait = self._change(count=True)

    def refund(self) -> None:
        """A request the platform refused with a 429 is not counted against the day."""

        def change(row: sa.Row[Any], now: float) -> dict[str, object]:
            return {"used": max(0, row.used - 1)} if row.day == _day(now) else {}

        self._transaction(change)

    def spent(self) -> QuotaExceeded:
        """The platform said the quota is spent: every process refuses until midnight UTC."""
        until: list[float] = []

        def change(row: sa.Row[Any], now: float) -> dict[str, object]:
            until.append(next_utc_midnight(now).timestamp())
            return {"spent_until": until[0]}

        self._transaction(change)
        return self._error(until[0] if until else next_utc_midnight(time.time()).timestamp())

    def used(self) -> int:
        """Requests counted today (UTC, the database's clock)."""
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(TABLE.c.day, TABLE.c.used, self._now).where(TABLE.c.key == self.key)
            ).first()
        return 0 if row is None or row[0] != _day(float(row[2])) else int(row[1])

    # ------------------------------------------------------------------ the row

    def _change(self, *, count: bool) -> float:
        """Take the next slot (and count the request): the seconds until it."""
        refused: list[float] = []
        waits: list[float] = []

        def change(row: sa.Row[Any], now: float) -> dict[str, object]:
            values: dict[str, object] = {}
            day, used = row.day, row.used
            if day != _day(now):
                day, used = _day(now), 0
                values.update(day=day, used=0, spent_until=None)
            spent_until = None if "spent_until" in values else row.spent_until
            if count:
                if spent_until is not None and now < spent_until:
                    refused.append(spent_until)
                    return values
                if used >= self.limit:
                    refused.append(next_utc_midnight(now).timestamp())
                    return {**values, "spent_until": refused[0]}
                values["used"] = used + 1
            slot = max(row.next_at, now)
            values["next_at"] = slot + self.interval
            waits.append(slot - now)
            return values

        self._transaction(change)
        if refused:
            raise self._error(refused[0])
        return waits[0]

    def _transaction(self, change: Change) -> None:
        try:
            with self._engine.begin() as conn:
                if conn.dialect.name == "postgresql":  # no fsync per request: see the module docstring
                    conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                locked = (
                    sa.select(TABLE, self._now.label("now")).where(TABLE.c.key == self.key).with_for_update()
                )
                row = conn.execute(locked).first()
                if row is None:  # the application's first request in this store
                    self._create(conn)
                    row = conn.execute(locked).one()
                values = change(row, float(row.now))
                if values:
                    conn.execute(sa.update(TABLE).where(TABLE.c.key == self.key).values(**values))
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise Retriable(
                "%(platform)s: the metadata store, which keeps the application's shared rate limit and daily quota, did not answer: %(value)s",
                params={"platform": self.name, "value": exc.orig or exc},
            ) from exc

    def _create(self, conn: Connection) -> None:
        now = float(conn.execute(sa.select(self._now)).scalar_one())
        row = {"key": self.key, "platform": self.platform, "next_at": now, "day": _day(now), "used": 0}
        if conn.dialect.name == "postgresql":
            conn.execute(postgresql.insert(TABLE).values(row).on_conflict_do_nothing(index_elements=["key"]))
        else:
            conn.execute(sqlite.insert(TABLE).values(row).on_conflict_do_nothing(index_elements=["key"]))

    def _error(self, until: float) -> QuotaExceeded:
        resets_at = datetime.fromtimestamp(until, UTC)
        return QuotaExceeded(
            "%(platform)s: the daily API quota of the application (%(limit)s requests) is spent; it resets at %(resets_at)s UTC",
            params={
                "platform": self.name,
                "limit": format(self.limit, ","),
                "resets_at": format(resets_at, "%Y-%m-%d %H:%M"),
            },
            resets_at=resets_at,
            details={"resets_at": resets_at.isoformat(), "quota": self.limit},
        )
