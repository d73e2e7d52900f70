"""The platform's limits: 4 requests/s and 10,000 requests/day per application, 1 token request/s.

All configurable through ``POST /_sandbox/faults`` (None switches a limit off).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests_per_second: float | None = Field(default=4, gt=0, description="per application (client_id)")
    daily_quota: int | None = Field(default=10_000, ge=0, description="per application per UTC day")
    token_requests_per_second: float | None = Field(default=1, gt=0, description="token endpoint, per client")
    activity_rows_per_second: float | None = Field(
        default=5_000, gt=0, description="how fast an activity processes its rows; None: at once"
    )
    instant_activities: bool = Field(default=False, description="activities complete when they are created")
    access_token_seconds: float | None = Field(default=86_400, gt=0, description="access token lifetime")
    max_queued_activities: int | None = Field(default=1_000, ge=0, description="per account, else 429")

    @property
    def rows_per_second(self) -> float | None:
        """Activity speed; None means at once."""
        return None if self.instant_activities else self.activity_rows_per_second


def updated_limits(current: Limits, changes: dict[str, Any]) -> Limits:
    """The limits with ``changes`` applied; ``ValueError`` names unknown keys or bad values."""
    unknown = sorted(set(changes) - set(Limits.model_fields))
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(unknown)}")
    try:
        return Limits.model_validate(current.model_dump() | changes)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(problems) from exc


class TokenBucket:
    """``rate`` requests per second with a burst of ``max(1, rate)``."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RateLimiter:
    """Per-key token buckets plus a per-key count of requests per UTC day."""

    def __init__(self) -> None:
        self.buckets: dict[str, TokenBucket] = {}
        self.days: dict[str, tuple[int, int]] = {}  # key -> (UTC day number, requests that day)

    def clear_buckets(self) -> None:
        """Start from full buckets (after the rate changed)."""
        self.buckets.clear()

    def allow_rate(self, key: str, rate: float | None) -> bool:
        if rate is None:
            return True
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(rate)
        return bucket.take()

    def quota_left(self, key: str, quota: int | None) -> bool:
        if quota is None:
            return True
        day, used = self.days.get(key, (0, 0))
        return day != _utc_day() or used < quota

    def today(self) -> dict[str, int]:
        """Requests counted against each key's daily quota today (UTC)."""
        today = _utc_day()
        return {key: used for key, (day, used) in self.days.items() if day == today}

    def count_day(self, key: str) -> None:
        today = _utc_day()
        day, used = self.days.get(key, (today, 0))
        self.days[key] = (today, used + 1 if day == today else 1)


def _utc_day() -> int:
    return int(time.time() // 86_400)
