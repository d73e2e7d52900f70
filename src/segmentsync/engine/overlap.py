"""Sending while the plan is still being stored: the run's thread feeds, a sending thread sends.

Where at least :data:`OVERLAP_SHARE` of the snapshot is to be sent, the run keeps its snapshot and
starts sending as soon as the plan is made: the rows to send of each chunk read out of the
workspace are handed to the sender (``send.Feed``) instead of being stored, and each batch's
checkpoint stores them with their outcomes (one write per row instead of an insert before sending
and an update after). The run's thread stores only the rest (refused, unchanged, invalid).
"""

from __future__ import annotations

import threading
from typing import Any

from segmentsync.destinations.base import Destination
from segmentsync.engine.context import Context
from segmentsync.engine.rows import EXPECTED, PlanRow
from segmentsync.engine.send import Feed, SendJob, send
from segmentsync.observe.context import carry

# Keeping the snapshot costs ≈ 0.7 µs per member (a million: 0.7 s); storing a row to send before
# sending it (and updating it after) ≈ 2.5-5 µs, which sending from the feed saves (its rows are
# inserted once, by their checkpoint). Below this share of the snapshot to send, the plan is
# stored first (measured when rows were still stored before sending; not measured again since).
OVERLAP_SHARE = 0.25


def overlaps(to_send: int, members: int) -> bool:
    """Send while storing the plan (keeping the snapshot meanwhile)?"""
    return to_send > 0 and to_send >= OVERLAP_SHARE * members


def job_for(ctx: Context, destination: Destination, **more: Any) -> SendJob:
    return SendJob(
        sessions=ctx.runtime.sessions,
        run_id=ctx.run.id,
        export_id=ctx.export.id,
        list_id=ctx.export.list_id,
        lease_owner=ctx.lease_owner,
        destination=destination,
        resubscribe=ctx.export.resubscribe,
        removal_mode=ctx.export.removal_mode.value,
        stop=ctx.stop,
        cancel=ctx.cancel,
        max_batch_rows=ctx.runtime.settings.max_batch_rows,
        **more,
    )


class SendWhilePlanning:
    """Sends the plan's rows from a thread of its own (``run<id>-send``) while the run's thread
    still reads the plan out.

    The run's thread hands over each chunk (:meth:`hand`), stores only what it did not hand over
    and, after the last, calls :meth:`close`; :meth:`join` waits for the sender and raises what
    stopped it. Shared between the two threads: the feed (one condition) and ``stopped`` (an
    event the sending thread sets when it ends, after setting ``error``); ``open`` is the run's
    thread's own.
    """

    def __init__(self, ctx: Context, destination: Destination) -> None:
        self.feed = Feed()
        self.job = job_for(ctx, destination, feed=self.feed, write_lock=ctx.write_lock)
        self.error: BaseException | None = None  # read only once ``stopped`` is set
        self.stopped = threading.Event()
        self.open = True  # rows of the plan may still come
        self._thread = threading.Thread(target=carry(self._send), name=f"run{ctx.run.id}-send", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _send(self) -> None:
        try:
            send(self.job)
        except BaseException as exc:  # handed to the run's thread by join()
            self.error = exc
        finally:
            self.stopped.set()

    def failed(self) -> bool:
        return self.stopped.is_set() and self.error is not None

    def hand(self, rows: list[PlanRow]) -> list[PlanRow] | None:
        """Hand over the rows to send of a chunk of the plan; returns the others, for the run's
        thread to store, or None if the sender stopped. After a chunk with rows not to send, no
        later one has any (the plan's rows to send come first), and the feed is closed."""
        if not self.open:
            return rows
        pending: list[PlanRow] = []
        rest: list[PlanRow] = []
        for row in rows:
            if row.outcome is None and row.action in EXPECTED:
                pending.append(row)
            else:
                rest.append(row)
        if not self.feed.put(pending):
            return None
        if rest:
            self.close()
        return rest

    def close(self) -> None:
        self.open = False
        self.feed.close()

    def abort(self, reason: BaseException) -> None:
        self.feed.abort(reason)
        self._thread.join()

    def join(self) -> None:
        self._thread.join()
        if self.error is not None:
            raise self.error
