"""Bulk activities: queued per account, processed one after another in creation order.

Nothing runs in the background: an activity's schedule (start, finish) is computed when it is
created, and its effect is applied by the first request that arrives after its finish time
(every API request of the account first calls :meth:`ActivityQueue.advance`). Until then the
contacts and lists do not show it, as on the platform.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from segmentsync.sandbox.constant_contact.timefmt import iso_ms

RETENTION_SECONDS = 10 * 86_400  # "Activity status retained 10 days"


@dataclass(slots=True)
class Outcome:
    """What applying an activity did: its status counters and error messages."""

    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


Work = Callable[[], Outcome]


class Activity:
    __slots__ = (
        "activity_id",
        "base_done",
        "completed_at",
        "counts",
        "created_at",
        "done",
        "errors",
        "finish_at",
        "initial",
        "items",
        "kind",
        "planned",
        "rate",
        "start_at",
        "started_at",
        "work",
    )

    def __init__(self, activity_id: str, kind: str, items: int, work: Work, counts: dict[str, int]) -> None:
        self.activity_id = activity_id
        self.kind = kind  # contacts_json_import, remove_list_memberships, add_list_memberships, list_delete
        self.items = items
        self.work: Work | None = work
        self.initial = counts  # status counters until it completes
        self.counts = dict(counts)
        self.errors: list[str] = []
        self.created_at = time.time()
        self.start_at = self.finish_at = self.started_at = self.created_at
        self.completed_at: float | None = None
        self.rate: float | None = None
        self.base_done = 0.0
        self.planned = False
        self.done = False

    def plan(self, now: float, start: float, rate: float | None) -> None:
        """(Re)schedule the remaining items from ``start`` at ``rate`` items/s (None: at once)."""
        if self.planned and now >= self.started_at:  # it has started: keep what is done
            self.base_done = self.progress(now)
        else:
            self.started_at = start
        self.planned = True
        self.start_at = start
        self.rate = rate
        remaining = self.items - self.base_done
        self.finish_at = start + (remaining / rate if rate and remaining > 0 else 0.0)

    def progress(self, now: float) -> float:
        """Items processed by ``now``."""
        if self.done:
            return float(self.items)
        if now < self.start_at:
            return self.base_done
        if self.rate is None:
            return float(self.items)
        return min(float(self.items), self.base_done + (now - self.start_at) * self.rate)

    def complete(self) -> None:
        if self.work is not None:
            outcome = self.work()
            self.counts |= outcome.counts
            self.errors = outcome.errors
        self.work = None  # let the payload go
        self.done = True
        self.completed_at = self.finish_at

    def state(self, now: float) -> str:
        if self.done:
            return "completed"
        return "processing" if now >= self.started_at else "initialized"

    def to_json(self, now: float, *, fresh: bool = False) -> dict[str, Any]:
        """The activity as GET shows it; ``fresh``: as the creating request answers (just received)."""
        state = "initialized" if fresh else self.state(now)
        done = 0 if fresh else int(self.progress(now))
        percent = 100 if state == "completed" else min(99, done * 100 // self.items) if self.items else 0
        body: dict[str, Any] = {
            "activity_id": self.activity_id,
            "state": state,
            "created_at": iso_ms(self.created_at),
            "updated_at": iso_ms(min(now, self.finish_at) if state != "initialized" else self.created_at),
        }
        if state != "initialized":
            body["started_at"] = iso_ms(self.started_at)
        if state == "completed" and self.completed_at is not None:
            body["completed_at"] = iso_ms(self.completed_at)
        body["percent_done"] = percent
        body["activity_errors"] = [] if fresh else list(self.errors)
        counts = self.initial if fresh else self.counts
        body["status"] = {"items_total_count": self.items, "items_completed_count": done} | counts
        body["_links"] = {"self": {"href": f"/v3/activities/{self.activity_id}"}}
        return body


class ActivityQueue:
    """The activities of one account; the pending ones in creation order."""

    def __init__(self) -> None:
        self.by_id: dict[str, Activity] = {}
        self.pending: deque[Activity] = deque()

    def add(self, activity: Activity, rate: float | None) -> None:
        now = time.time()
        start = max(now, self.pending[-1].finish_at) if self.pending else now
        activity.plan(now, start, rate)
        self.by_id[activity.activity_id] = activity
        self.pending.append(activity)
        self.advance(now)

    def advance(self, now: float) -> None:
        """Apply every activity whose finish time has come, in order."""
        pending = self.pending
        while pending and pending[0].finish_at <= now:
            pending.popleft().complete()
        if self.by_id:
            oldest = next(iter(self.by_id.values()))
            if oldest.done and oldest.created_at < now - RETENTION_SECONDS:
                self._prune(now)

    def reschedule(self, rate: float | None) -> None:
        """The speed changed: pending activities continue at the new speed from now."""
        now = time.time()
        start = now
        for activity in self.pending:
            activity.plan(now, max(start, now), rate)
            start = activity.finish_at
        self.advance(now)

    def queued(self) -> int:
        return len(self.pending)

    def recent(self) -> list[Activity]:
        return list(reversed(self.by_id.values()))

    def _prune(self, now: float) -> None:
        cutoff = now - RETENTION_SECONDS
        for activity_id, activity in list(self.by_id.items()):
            if activity.created_at >= cutoff or not activity.done:
                break
            del self.by_id[activity_id]
