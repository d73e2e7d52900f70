"""Pacing requests: a token bucket shared per application, a daily quota, a header-driven pacer.

All are thread-safe and take their clock (epoch seconds) and sleep as seams. A limiter hands out
*slots*: a thread reserves the next free slot under a lock, then sleeps until it outside the
lock, so N threads waiting spread out instead of waking together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

from segmentsync.errors import QuotaExceeded

Clock = Callable[[], float]
Sleep = Callable[[float], None]
SHARE = 4  # HeaderPacer: requests in flight stay within a quarter of what remains
ANSWER_WAIT = 0.05  # seconds between looks while waiting for another thread's answer


class Quota(Protocol):
    """A daily request quota: ``DailyQuota`` (this process) or ``shared_limits.StoreLimits``."""

    def take(self) -> None: ...

    def refund(self) -> None: ...

    def spent(self) -> QuotaExceeded: ...


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
            "%(platform)s: the daily API quota of the application is spent; it resets at %(resets_at)s UTC",
            params={"platform": self.name, "resets_at": format(resets_at, "%Y-%m-%d %H:%M")},
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
    """Follows ``X-RateLimit-Limit/Remaining/Reset`` (Reset in seconds, not an epoch) for every
    thread of one destination.

    * Nothing is held back until an answer carries the headers. Once a window has reset, one
      request goes alone: its answer says what the new window allows (other senders of the same
      key may have used some of it).
    * After an answer with ``Remaining: n``, at most ``n`` minus the requests still in flight
      leave before the next answer; at 0, nobody sends until the reset.
    * Requests in flight at once stay within a quarter of what remains (``SHARE``): other
      processes sending with the same key spend the same window, and a 429 should cost each
      sender one request, not many. When ``Remaining`` is at ``low_water`` or below, one request
      is in flight at a time and the rest are spread evenly until the reset.
    * A 429 pauses everyone for ``Reset`` seconds (:meth:`pause`).

    :meth:`observe` must follow every :meth:`acquire` (with ``{}`` when no answer came):
    ``ApiClient`` calls it for every attempt.
    """

    def __init__(self, *, clock: Clock, sleep: Sleep, low_water_share: float = 0.1) -> None:
        self._clock = clock
        self._sleep = sleep
        self._low_share = low_water_share
        self._cond = threading.Condition()
        self._next = 0.0  # nobody sends before this (a 429's pause, or spreading)
        self._budget: int | None = None  # may still leave before the next answer; None: no limit known
        self._reset_at = 0.0  # the end of the window
        self._limit: int | None = None
        self._in_flight = 0

    def acquire(self) -> float:
        waited = 0.0
        with self._cond:
            while True:
                delay = self._delay(self._clock())
                if delay == 0.0:
                    break
                if delay is None:  # wait for an answer (another thread's request is in flight)
                    self._cond.wait(ANSWER_WAIT)
                    continue
                self._cond.release()
                try:
                    self._sleep(delay)
                finally:
                    self._cond.acquire()
                waited += delay
            self._in_flight += 1
            if self._budget is not None:
                self._budget -= 1
        return waited

    def _delay(self, now: float) -> float | None:
        """0: go now (and spread the next one); seconds to sleep; None: wait for an answer."""
        if now < self._next:
            return self._next - now
        if self._budget is None:
            return 0.0
        if now >= self._reset_at:  # the window is over (or not known yet): one request finds out
            return 0.0 if self._in_flight == 0 else None
        low = self._budget <= self._low_water()
        # In flight at once: at most a SHARE-th of what the last answer left (one when it is low),
        # so that other senders of the same key, spending the same window, cannot make several
        # of ours fail together.
        most = 1 if low else max(1, (self._budget + self._in_flight) // SHARE)
        if self._budget <= 0 or self._in_flight >= most:
            return None if self._in_flight else self._reset_at - now
        if low:
            self._next = now + (self._reset_at - now) / self._budget
        return 0.0

    def observe(self, headers: Mapping[str, str]) -> None:
        """The answer to one acquired request (``{}``: it failed without an answer)."""
        try:
            remaining: int | None = int(headers["x-ratelimit-remaining"])
            reset = float(headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            remaining, reset = None, 0.0
        limit = headers.get("x-ratelimit-limit")
        with self._cond:
            self._in_flight = max(0, self._in_flight - 1)
            now = self._clock()
            if remaining is not None:
                allowed = remaining - self._in_flight  # those in flight may not be counted yet
                if self._budget is None or now >= self._reset_at:  # a new window
                    self._budget, self._reset_at = allowed, now + reset
                else:  # Remaining only falls within a window: an older answer must not raise it
                    self._budget = min(self._budget, allowed)
                    self._reset_at = max(self._reset_at, now + reset)
                self._limit = int(limit) if limit and limit.isdigit() else self._limit
            self._cond.notify_all()

    def pause(self, seconds: float) -> None:
        with self._cond:
            self._next = max(self._next, self._clock() + seconds)

    def _low_water(self) -> int:
        return max(2, int((self._limit or 0) * self._low_share))
