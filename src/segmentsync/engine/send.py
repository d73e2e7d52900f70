"""Send phase: batches through the destination, several in flight, a checkpoint after each.

The rows still to send are read in pages by ``seq`` (keyset pagination, short reads), packed
into batches within the destination's limits and sent from a thread pool; how many are in
flight adapts to the platform (:class:`Window`: from ``limits.concurrency`` up to
``max_concurrency``). Acknowledged batches go, in the order they came back, to the recorder
thread (``checkpoint.py``), which commits them — the rows' outcomes, the export's delivered
state and the run's progress, fenced by the lease — while the next batches are sent.
A resumed run simply sends the rows whose outcome is still empty.

The rows may also come from a :class:`Feed`: the runner hands over the plan's rows to send
chunk by chunk instead of storing them, so that sending starts while the plan is still being
read out; each batch's rows are then stored by its checkpoint, with their outcomes (one write
per row instead of an insert before sending and an update after). Until the run has sent them
all, it keeps its snapshot: a resumed run plans what it did not record again from it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from segmentsync.destinations.api_client import GIVEN_UP, GivenUp
from segmentsync.destinations.base import Destination, Limits, RenderedBatch, RowResult
from segmentsync.destinations.batching import ENVELOPE_BYTES, chunk
from segmentsync.engine.bulk import raw_rows
from segmentsync.engine.checkpoint import Checkpoints, Recorder
from segmentsync.engine.in_flight import InFlight
from segmentsync.engine.lease import CANCEL_POLL_SECONDS, Cancelled, LeaseLost
from segmentsync.engine.rows import COLUMNS, UPSERTS, PlanRow, one_of
from segmentsync.errors import Fatal
from segmentsync.exports.models import MemberAction, Outcome
from segmentsync.observe.context import carry

log = logging.getLogger(__name__)
PAGE_ROWS = 20_000
REMOVE_BATCH = 500
ROW_OVERHEAD_BYTES = 24  # JSON punctuation and the email key around each member (the destination re-splits a batch that is still too big)


@dataclass
class SendJob:
    sessions: sessionmaker[Session]
    run_id: int
    export_id: int
    list_id: str
    lease_owner: str
    destination: Destination
    resubscribe: bool
    removal_mode: str
    stop: threading.Event  # set by the worker on shutdown or when the lease is lost
    cancel: threading.Event = field(default_factory=threading.Event)  # a user cancelled the run
    max_batch_rows: int | None = None  # an operator's cap below the platform's batch size
    feed: Feed | None = None  # the rows as the runner stores them; None: read the stored plan
    write_lock: AbstractContextManager[Any] | None = None  # shared with the plan's writer (SQLite)
    in_flight: InFlight | None = None  # the platform's progress within batches (set by send())

    def limits(self) -> Limits:
        limits = self.destination.limits
        if self.max_batch_rows is not None and self.max_batch_rows < limits.max_batch_rows:
            return replace(limits, max_batch_rows=self.max_batch_rows)
        return limits

    def checkpoints(self) -> Checkpoints:
        return Checkpoints(
            sessions=self.sessions,
            run_id=self.run_id,
            export_id=self.export_id,
            lease_owner=self.lease_owner,
            from_feed=self.feed is not None,
            write_lock=self.write_lock,
        )


class Feed:
    """The plan's rows to send, handed from the runner to the sender while the runner stores the rest.

    The runner puts each chunk, in seq order (the rows to upsert, then those to remove), instead
    of storing those rows itself: the sender stores each batch's rows, with their outcomes, in
    the batch's checkpoint. At most ``max_chunks`` wait, so the plan is read from the workspace
    no faster than it is sent.
    """

    def __init__(self, max_chunks: int = 4) -> None:
        self._changed = threading.Condition()
        self._chunks: deque[list[PlanRow]] = deque()
        self.max_chunks = max_chunks
        self._closed = self._gone = False
        self._error: BaseException | None = None

    def put(self, rows: list[PlanRow]) -> bool:
        """Hand over the next rows; False if the sender takes no more (it stopped)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._chunks) < self.max_chunks or self._gone)
            if self._gone:
                return False
            if rows:
                self._chunks.append(rows)
                self._changed.notify_all()
            return True

    def close(self) -> None:
        """No more rows to send."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def abort(self, reason: BaseException) -> None:
        """The runner failed: the sender takes no more rows (it records what is in flight)."""
        with self._changed:
            self._error = reason
            self._changed.notify_all()

    def leave(self) -> None:
        """The sender stopped taking rows."""
        with self._changed:
            self._gone = True
            self._changed.notify_all()

    def rows(self) -> Iterator[PlanRow]:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._chunks or self._closed or self._error is not None)
                if self._error is not None:
                    raise self._error
                if not self._chunks:
                    return
                chunk = self._chunks.popleft()
                self._changed.notify_all()
            yield from chunk


def send(job: SendJob) -> None:
    """Send every pending row of the run; raises the destination's error if a batch fails."""
    limits = job.limits()
    job.in_flight = job.in_flight or InFlight(job.sessions, job.run_id, job.lease_owner, job.write_lock)
    given_up = GIVEN_UP.set(job.stop)  # carried into each batch's thread: no retry once the run is given up
    try:
        _drive(job, _work(job, limits), Window.of(limits, job.destination.pushback))
    finally:
        GIVEN_UP.reset(given_up)
        if job.feed is not None:
            job.feed.leave()


class Window:
    """How many batches may be in flight: AIMD, as TCP does it, where the platform allows it.

    It starts at ``limits.concurrency``. While no answer asks us to slow down it grows by one per
    acknowledged batch (slow start) up to ``limits.max_concurrency``; when the destination's
    ``pushback`` (429s, 5xx, timeouts) grows, it halves and from then on grows by one per window of
    acknowledged batches. A latency-bound platform gets many batches in flight, a struggling one few.
    """

    def __init__(self, start: int, ceiling: int, pushback: Callable[[], int]) -> None:
        self.size = max(1, start)
        self.ceiling = max(self.size, ceiling)
        self._pushback = pushback
        self._seen = pushback()
        self._slow_start = True
        self._acked = 0

    @classmethod
    def of(cls, limits: Limits, pushback: Callable[[], int]) -> Window:
        return cls(limits.concurrency, limits.max_concurrency or limits.concurrency, pushback)

    def acknowledged(self) -> None:
        """One batch came back: adjust the window to what the platform said meanwhile."""
        now = self._pushback()
        if now > self._seen:
            self.size = max(1, self.size // 2)
            self._slow_start, self._acked = False, 0
        elif self._slow_start:
            self.size = min(self.ceiling, self.size + 1)
        else:
            self._acked += 1
            if self._acked >= self.size:
                self.size, self._acked = min(self.ceiling, self.size + 1), 0
        self._seen = now


# A batch's work: send it, and say which rows did not end as planned (by position in the batch).
BatchWork = Callable[["SendJob", list[PlanRow]], dict[int, RowResult]]


def _work(job: SendJob, limits: Limits) -> Iterator[tuple[BatchWork, list[PlanRow]]]:
    budget = None if limits.max_batch_bytes is None else limits.max_batch_bytes - ENVELOPE_BYTES
    if job.feed is not None:
        to_upsert, to_remove = _split(job.feed.rows())
    else:
        to_upsert, to_remove = _pending(job, PENDING_UPSERTS), _pending(job, PENDING_REMOVALS)
    upserts = chunk(to_upsert, max_rows=limits.max_batch_rows, max_bytes=budget, size=_row_bytes)
    for batch in upserts:
        yield _upsert, batch
    removals = chunk(
        to_remove,
        max_rows=min(REMOVE_BATCH, limits.max_batch_rows),
        max_bytes=None,
        size=_row_bytes,
    )
    for batch in removals:
        yield _remove, batch


def _split(rows: Iterable[PlanRow]) -> tuple[Iterator[PlanRow], Iterator[PlanRow]]:
    """The rows to upsert and, once those are used up, the rows to remove (seq order puts the
    upserts first)."""
    stream = iter(rows)
    first_removal: list[PlanRow] = []

    def upserts() -> Iterator[PlanRow]:
        for row in stream:
            if row.action == MemberAction.REMOVE:
                first_removal.append(row)
                return
            yield row

    def removals() -> Iterator[PlanRow]:
        yield from first_removal
        yield from stream

    return upserts(), removals()


def _drive(
    job: SendJob,
    work: Iterator[tuple[BatchWork, list[PlanRow]]],
    window: Window,
) -> None:
    in_flight: dict[Future[dict[int, RowResult]], list[PlanRow]] = {}
    failure: BaseException | None = None
    recorder = Recorder(job.checkpoints())
    told = False
    try:
        with ThreadPoolExecutor(max_workers=window.ceiling, thread_name_prefix=f"run{job.run_id}") as pool:
            while True:
                if job.cancel.is_set() and not told:  # said once, with what it waits for
                    log.info(
                        "run %s: cancelled: no new batch is sent; %d batch(es) in flight are recorded "
                        "when they come back", job.run_id, len(in_flight),
                    )  # fmt: skip
                    told = True
                while (
                    failure is None
                    and not recorder.stopped()
                    and not job.stop.is_set()
                    and not job.cancel.is_set()
                    and len(in_flight) < window.size
                ):
                    try:
                        item = next(work, None)
                    except Exception as exc:  # the rows could not be read: stop, but record what is in flight
                        failure = exc
                        break
                    if item is None:
                        break
                    action, batch = item
                    in_flight[pool.submit(carry(action), job, batch)] = batch
                if not in_flight:
                    break
                # Wakes to look at ``cancel`` too: a batch may take minutes (an import).
                done, _ = wait(in_flight, timeout=CANCEL_POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    batch = in_flight.pop(future)
                    error = future.exception()
                    if error is not None:  # a batch given up is left to whoever resumes (LeaseLost below)
                        failure = failure or (None if isinstance(error, GivenUp) else error)
                        continue
                    window.acknowledged()
                    recorder.put(batch, future.result())
    finally:
        recorder.close()  # every acknowledged batch is checkpointed (or the store said why not)
    if isinstance(recorder.error, LeaseLost):
        job.stop.set()
    failure = failure or recorder.error
    if failure is not None:
        raise failure
    if job.stop.is_set():
        raise LeaseLost("the worker is stopping or lost the lease")
    if recorder.cancelled.is_set() or job.cancel.is_set():
        raise Cancelled


def _upsert(job: SendJob, batch: list[PlanRow]) -> dict[int, RowResult]:
    rendered = RenderedBatch(
        emails=[row.email for row in batch],
        rows=[row.payload or "{}" for row in batch],
        planned_new=[row.action == "new" for row in batch],
    )
    with job.in_flight.batch() if job.in_flight else nullcontext():
        return job.destination.upsert_rows(job.list_id, rendered, resubscribe=job.resubscribe)


def _remove(job: SendJob, batch: list[PlanRow]) -> dict[int, RowResult]:
    with job.in_flight.batch() if job.in_flight else nullcontext():
        results = job.destination.remove(job.list_id, [row.email for row in batch], mode=job.removal_mode)
    if len(results) != len(batch):
        raise Fatal(
            "the destination answered %(count)s outcomes for %(removals)s removals",
            params={"count": len(results), "removals": len(batch)},
        )
    return {
        index: result
        for index, result in enumerate(results)
        if result.outcome is not Outcome.REMOVED or result.code or result.message
    }


_PENDING = (
    "SELECT {columns} FROM run_members "
    "WHERE run_id = ? AND seq > ? AND outcome IS NULL AND action IN ({actions}) ORDER BY seq LIMIT ?"
)
PENDING_UPSERTS = _PENDING.format(columns=", ".join(COLUMNS), actions=one_of(*UPSERTS))
PENDING_REMOVALS = _PENDING.format(columns=", ".join(COLUMNS), actions=one_of(MemberAction.REMOVE))


def _pending(job: SendJob, query: str) -> Iterator[PlanRow]:
    """Rows still to send (``query``: PENDING_UPSERTS or PENDING_REMOVALS), in seq order, read a
    page at a time (no cursor held across commits).

    Read through the driver's own cursor: a million rows pass here, and each costs little.
    """
    last = 0
    while True:
        with job.sessions() as session:
            page = raw_rows(session, query, (job.run_id, last, PAGE_ROWS))
        if not page:
            return
        yield from map(PlanRow._make, page)
        last = page[-1][1]  # seq


def _row_bytes(row: PlanRow) -> int:
    """About what the row takes on the wire: its email, its fields (already JSON), punctuation."""
    return len(row.email) + len(row.payload or "") + ROW_OVERHEAD_BYTES
