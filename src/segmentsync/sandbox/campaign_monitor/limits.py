"""The platform limits the emulator enforces, set through ``POST /_sandbox/faults``.

CM publishes no numbers for its non-transactional endpoints, so both throttles are off by default.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_TOKEN_SECONDS = 1_209_600  # 14 days, as CM's token answers say


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate_limit: int | None = Field(default=None, ge=1, description="requests per window per API key / token")
    rate_limit_window_seconds: float = Field(default=60, gt=0)
    subscriber_throttle: int | None = Field(
        default=None, ge=1, description="adds/updates of one address within the window before CM's 429"
    )
    subscriber_throttle_window_seconds: float = Field(default=60, gt=0)
    access_token_seconds: int = Field(default=DEFAULT_TOKEN_SECONDS, ge=1)
    unknown_api_key_code: Literal[50, 100] = Field(
        default=50, description="Code of the 401 for a well-formed Basic header with an unknown key"
    )


def update_limits(current: Limits, changes: dict[str, Any]) -> Limits:
    """``current`` with ``changes`` applied; ValueError naming unknown keys or bad values."""
    unknown = sorted(set(changes) - set(Limits.model_fields))
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(unknown)}")
    try:
        return Limits.model_validate(current.model_dump() | changes)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(problems) from None


class FixedWindow:
    """Counts hits per identity in fixed windows that start at an identity's first hit."""

    def __init__(self) -> None:
        self.windows: dict[object, list[float]] = {}  # identity -> [window start, hits]

    def hit(self, identity: object, *, limit: int, window: float, now: float) -> tuple[bool, int, float]:
        """(allowed, hits left after this one, seconds until the window resets)."""
        state = self.windows.get(identity)
        if state is None or now >= state[0] + window:
            if len(self.windows) > 100_000:
                self._prune(window, now)
            state = self.windows[identity] = [now, 0.0]
        reset = state[0] + window - now
        if state[1] >= limit:
            return False, 0, reset
        state[1] += 1
        return True, limit - int(state[1]), reset

    def _prune(self, window: float, now: float) -> None:
        self.windows = {key: value for key, value in self.windows.items() if now < value[0] + window}


def rate_limit_headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(max(0, math.ceil(reset))),
    }
