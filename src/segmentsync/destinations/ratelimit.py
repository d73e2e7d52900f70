"""Pacing requests: a token bucket shared per application, a daily quota, a header-driven pacer.

All are thread-safe and take their clock (epoch seconds) and sleep as seams. A limiter hands out
*slots*: a thread reserves the next free slot under a lock, then sleeps until it outside the
lock, so N threads waiting spread out instead of waking together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from segmentsync.errors import QuotaExceeded

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class TokenBucket:
    """At most ``rate`` requests per second on average, bursts of ``burst`` (GCRA)."""

    def __init__(self, rate: float, *, burst: int = 1, clock: Clock, sleep: Sleep) -> None:
        self.interval = 1.0 / rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat = 0.0  # theoretical arrival time of the next request

    def acquire(self) -> float:
        """Wait for a slot; return the seconds waited."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            wait = max(0.0, tat - (self.burst - 1) * self.interval - now)
            self._tat = tat + self.interval
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Nobody gets a slot for ``seconds`` (the platform said: too many)."""
        with self._lock:
            self._tat = max(self._tat, self._clock() + seconds)


def next_utc_midnight(now: float) -> datetime:
    today = datetime.fromtimestamp(now, UTC).date()
    return datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)


class DailyQuota:
    """Requests per UTC day. Counts what this process sent; the platform's 429 is the authority."""

    def __init__(self, limit: int, *, clock: Clock, name: str) -> None:
        self.limit = limit
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._day = ""
        self.used = 0
        self._spent_until: datetime | None = None

    def take(self) -> None:
        """Count one request; QuotaExceeded if the day's quota is known to be spent."""
        now = self._clock()
        day = datetime.fromtimestamp(now, UTC).date().isoformat()
        with self._lock:
            if day != self._day:
                self._day, self.used = day, 0
            if self._spent_until and datetime.fromtimestamp(now, UTC) < self._spent_until:
                raise self._error(self._spent_until)
            if self.used >= self.limit:
                self._spent_until = next_utc_midnight(now)
                raise self._error(self._spent_until)
            self.used += 1

    def refund(self) -> None:
        """A request the platform refused with a 429 is not counted against the day."""
        with self._lock:
            self.used = max(0, self.used - 1)

    def spent(self) -> QuotaExceeded:
        """The platform said the quota is spent: refuse until next midnight UTC."""
        with self._lock:
            self._spent_until = next_utc_midnight(self._clock())
            return self._error(self._spent_until)

    def _error(self, resets_at: datetime) -> QuotaExceeded:
        return QuotaExceeded(
            f"{self.name}: the daily API quota of the application is spent; it resets at "
            f"{resets_at:%Y-%m-%d %H:%M} UTC",
            resets_at=resets_at,
            details={"resets_at": resets_at.isoformat()},
        )


_SHARED_LOCK = threading.Lock()
_SHARED: dict[tuple[str, str], tuple[TokenBucket, DailyQuota]] = {}


def shared_limits(
    key: tuple[str, str], *, rate: float, daily: int, clock: Clock, sleep: Sleep, name: str
) -> tuple[TokenBucket, DailyQuota]:
    """The process-wide bucket and quota of one application (API URL, application key).

    Constant Contact counts its limits per application, across all accounts and tokens, so
    every destination of one application in this process must share them.
    """
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = (
                TokenBucket(rate, clock=clock, sleep=sleep),
                DailyQuota(daily, clock=clock, name=name),
            )
        return _SHARED[key]


class HeaderPacer:
    """Follows ``X-RateLimit-Limit/Remaining/Reset`` (Reset in seconds, not an epoch).

    Requests go at full speed while plenty remain; when ``Remaining`` falls to ``low_water`` or
    below, the rest are spread evenly until the reset; at 0, everyone waits for the reset. A 429
    pauses everyone for ``Reset`` seconds (:meth:`pause`).
    """

    def __init__(self, *, clock: Clock, sleep: Sleep, low_water_share: float = 0.1) -> None:
        self._clock = clock
        self._sleep = sleep
        self._low_share = low_water_share
        self._lock = threading.Lock()
        self._next = 0.0
        self._remaining: int | None = None
        self._limit: int | None = None
        self._reset_at = 0.0

    def acquire(self) -> float:
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            interval = 0.0
            if self._remaining is not None and self._reset_at > start:
                if self._remaining <= 0:
                    start = self._reset_at
                elif self._remaining <= self._low_water():
                    interval = (self._reset_at - start) / self._remaining
                self._remaining -= 1  # our own estimate until the next answer says
            self._next = start + interval
        wait = start - now
        if wait > 0:
            self._sleep(wait)
        return wait

    def observe(self, headers: Mapping[str, str]) -> None:
        try:
            remaining = int(headers["x-ratelimit-remaining"])
            reset = float(headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return
        limit = headers.get("x-ratelimit-limit")
        with self._lock:
            self._remaining = remaining
            self._reset_at = self._clock() + reset
            self._limit = int(limit) if limit and limit.isdigit() else self._limit

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)

    def _low_water(self) -> int:
        return max(2, int((self._limit or 0) * self._low_share))
