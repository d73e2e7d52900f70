"""Test seams for the destinations: a fake clock and a scripted HTTP transport."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import httpx
import orjson

from segmentsync.destinations.policy import RetryPolicy, Tuning

START = 1_800_000_000.0  # 2027-01-15 08:00 UTC

FAST = Tuning(
    timeout=httpx.Timeout(2.0),
    retry=RetryPolicy(attempts=3, timeout=10, wait_initial=0.001, wait_max=0.001, wait_jitter=0),
    poll_initial=0.0,
    poll_max=0.0,
)


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self, now: float = START) -> None:
        self.now = now
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += seconds

    def advance(self, delta: timedelta) -> None:
        self.now += delta.total_seconds()


Answer = httpx.Response | Exception


class Script:
    """A transport answering from a list (then the last answer forever); it records requests."""

    def __init__(self, *answers: Answer | Callable[[httpx.Request], Answer]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if callable(answer) and not isinstance(answer, httpx.Response | Exception):
            answer = answer(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def json_response(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, content=orjson.dumps(body), headers={"content-type": "application/json", **(headers or {})}
    )
