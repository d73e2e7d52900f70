"""Everything one emulator instance remembers, and ``reset`` to forget it."""

from __future__ import annotations

import time

from segmentsync.sandbox.campaign_monitor.auth import OAuth
from segmentsync.sandbox.campaign_monitor.limits import FixedWindow, Limits
from segmentsync.sandbox.campaign_monitor.store import Store
from segmentsync.sandbox.faults import FaultState


class Emulator:
    def __init__(self) -> None:
        self.faults = FaultState()  # the fault middleware holds this very object: never replaced
        self._fresh()

    def _fresh(self) -> None:
        self.store = Store()
        self.oauth = OAuth()
        self.limits = Limits()
        self.request_windows = FixedWindow()  # the X-RateLimit-* limit, per API key / token
        self.subscriber_windows = FixedWindow()  # "added too many times too quickly", per address
        self.requests: dict[
            str, int
        ] = {}  # by route template, e.g. "POST /api/v3.3/subscribers/{listid}/import.json"

    def reset(self) -> None:
        self.faults.reset()
        self._fresh()

    @staticmethod
    def now() -> float:
        return time.time()

    def count(self, template: str) -> None:
        self.requests[template] = self.requests.get(template, 0) + 1

    def stats(self) -> dict[str, object]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "total_requests": sum(self.requests.values()),
            "injected_faults": dict(self.faults.injected),
        }
