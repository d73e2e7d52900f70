"""Constant Contact bulk activities: submit, then poll until the activity is final.

Polls go through the same ``ApiClient`` (so the same 4 requests/s limiter and daily quota): the
first after ``poll_initial`` seconds, then 1.5 times longer each time up to ``poll_max``. An
activity that ends ``failed``, ``cancelled`` or ``timed_out``, or is not final after
``poll_timeout``, is submitted again (imports and membership removals are idempotent); after
``ROUNDS`` tries the batch fails with ``Retriable``.
"""

from __future__ import annotations

from typing import Any

from segmentsync.destinations import progress
from segmentsync.destinations.api_client import ApiClient, json_of
from segmentsync.destinations.policy import Tuning
from segmentsync.destinations.ratelimit import Clock, Sleep
from segmentsync.errors import Retriable

FINAL = frozenset({"completed", "failed", "cancelled", "timed_out"})
ROUNDS = 3


class Activities:
    def __init__(self, api: ApiClient, *, tuning: Tuning, clock: Clock, sleep: Sleep) -> None:
        self._api = api
        self._tuning = tuning
        self._clock = clock
        self._sleep = sleep

    def run(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Submit and wait; the completed activity (with its ``status`` counters)."""
        last = "not submitted"
        for _ in range(ROUNDS):
            activity = json_of(self._api.request("POST", path, json=body))
            rows = len(body.get("import_data") or (body.get("source") or {}).get("contact_ids") or [])
            final = self._wait(activity, id(body), rows)
            if final is not None and final.get("state") == "completed":
                progress.report(id(body), rows)
                return final
            last = "not final in time" if final is None else f"ended {final.get('state')}"
            last += f" ({'; '.join((final or {}).get('activity_errors') or [])})"
        raise Retriable(
            "Constant Contact: the %(value)s activity %(last)s, %(rounds)s times",
            params={"value": path.rsplit("/", 1)[-1], "last": last, "rounds": ROUNDS},
        )

    def _wait(self, activity: dict[str, Any], part: int, rows: int) -> dict[str, Any] | None:
        """The final activity (None: not final in time); its ``percent_done`` is reported as it grows."""
        activity_id = activity["activity_id"]
        deadline = self._clock() + self._tuning.poll_timeout
        wait = self._tuning.poll_initial
        while activity.get("state") not in FINAL:
            if self._clock() + wait > deadline:
                return None
            self._sleep(wait)
            wait = min(wait * 1.5, self._tuning.poll_max)
            activity = json_of(self._api.request("GET", f"/activities/{activity_id}"))
            if activity.get("state") not in FINAL and isinstance(activity.get("percent_done"), int | float):
                progress.report(part, int(rows * min(max(activity["percent_done"], 0), 100) // 100))
        return activity
