"""Send phase: batches through the destination, several in flight, a checkpoint after each.

The rows still to send are read in pages by ``seq`` (keyset pagination, short reads), packed
into batches within the destination's limits and sent from a thread pool; how many are in
flight adapts to the platform (:class:`Window`: from ``limits.concurrency`` up to
``max_concurrency``). Results come back to this (the only writing) thread, which commits, per
acknowledged batch and in one transaction: the rows' outcomes, the export's delivered state
and the run's progress. That transaction only commits while this worker still
holds the run's lease (fencing), so a worker that lost its lease cannot write over another.
A resumed run simply sends the rows whose outcome is still empty.

The rows may also come from a :class:`Feed`: the runner hands over the plan's rows to send
chunk by chunk instead of storing them, so that sending starts while the plan is still being
read out; each batch's rows are then stored by its checkpoint, with their outcomes (one write
per row instead of an insert before sending and an update after). Until the run has sent them
all, it keeps its snapshot: a resumed run plans what it did not record again from it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from segmentsync.destinations.base import Destination, Limits, RenderedBatch, RowResult
from segmentsync.destinations.batching import ENVELOPE_BYTES, chunk
from segmentsync.errors import Fatal
from segmentsync.exports.models import Outcome
from segmentsync.exports.planner import insert_members

PAGE_ROWS = 20_000
REMOVE_BATCH = 500
ROW_OVERHEAD_BYTES = 24  # JSON punctuation and the email key around each member (the destination re-splits a batch that is still too big)


class LeaseLost(Exception):  # an event the runner reacts to, not a failure of ours
    """Another worker took over this run; stop without writing."""


class Cancelled(Exception):
    """The run was cancelled; in-flight batches were recorded."""


class Row(NamedTuple):  # a tuple: a million of them are made, cheaply, straight from the driver's rows
    seq: int
    action: str
    email: str
    hash: str | None
    profile_key: str | None
    payload: str | None
    code: str | None  # the plan's note on the row (a value fitted to the platform's limits)
    message: str | None


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
    max_batch_rows: int | None = None  # an operator's cap below the platform's batch size
    feed: Feed | None = None  # the rows as the runner stores them; None: read the stored plan
    write_lock: AbstractContextManager[Any] | None = None  # shared with the plan's writer (SQLite)

    def limits(self) -> Limits:
        limits = self.destination.limits
        if self.max_batch_rows is not None and self.max_batch_rows < limits.max_batch_rows:
            return replace(limits, max_batch_rows=self.max_batch_rows)
        return limits


class Feed:
    """The plan's rows to send, handed from the runner to the sender while the runner stores the rest.

    The runner puts each chunk, in seq order (the rows to upsert, then those to remove), instead
    of storing those rows itself: the sender stores each batch's rows, with their outcomes, in
    the batch's checkpoint. At most ``max_chunks`` wait, so the plan is read from the workspace
    no faster than it is sent.
    """

    def __init__(self, max_chunks: int = 4) -> None:
        self._changed = threading.Condition()
        self._chunks: deque[list[Row]] = deque()
        self._max = max_chunks
        self._closed = self._gone = False
        self._error: BaseException | None = None

    def put(self, rows: list[Row]) -> bool:
        """Hand over the next rows; False if the sender takes no more (it stopped)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._chunks) < self._max or self._gone)
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

    def rows(self) -> Iterator[Row]:
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
    try:
        _drive(job, _work(job, limits), Window.of(limits, job.destination.pushback))
    finally:
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
Action = Callable[["SendJob", list[Row]], dict[int, RowResult]]


def _work(job: SendJob, limits: Limits) -> Iterator[tuple[Action, list[Row]]]:
    budget = None if limits.max_batch_bytes is None else limits.max_batch_bytes - ENVELOPE_BYTES
    if job.feed is not None:
        to_upsert, to_remove = _split(job.feed.rows())
    else:
        to_upsert, to_remove = _pending(job, ("new", "update")), _pending(job, ("remove",))
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


def _split(rows: Iterable[Row]) -> tuple[Iterator[Row], Iterator[Row]]:
    """The rows to upsert and, once those are used up, the rows to remove (seq order puts the
    upserts first)."""
    stream = iter(rows)
    first_removal: list[Row] = []

    def upserts() -> Iterator[Row]:
        for row in stream:
            if row.action == "remove":
                first_removal.append(row)
                return
            yield row

    def removals() -> Iterator[Row]:
        yield from first_removal
        yield from stream

    return upserts(), removals()


def _drive(
    job: SendJob,
    work: Iterator[tuple[Action, list[Row]]],
    window: Window,
) -> None:
    in_flight: dict[Future[dict[int, RowResult]], list[Row]] = {}
    failure: BaseException | None = None
    cancelled = lease_lost = False
    with ThreadPoolExecutor(max_workers=window.ceiling, thread_name_prefix=f"run{job.run_id}") as pool:
        while True:
            while (
                failure is None and not cancelled and not job.stop.is_set() and len(in_flight) < window.size
            ):
                try:
                    item = next(work, None)
                except Exception as exc:  # the rows could not be read: stop, but record what is in flight
                    failure = exc
                    break
                if item is None:
                    break
                action, batch = item
                in_flight[pool.submit(action, job, batch)] = batch
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                batch = in_flight.pop(future)
                error = future.exception()
                if error is not None:
                    failure = failure or error
                    continue
                window.acknowledged()
                if lease_lost:
                    continue  # another worker has the run: nothing more is written
                try:
                    cancelled = record(job, batch, future.result()) or cancelled
                except LeaseLost as exc:
                    job.stop.set()
                    failure, lease_lost = failure or exc, True
    if failure is not None:
        raise failure
    if job.stop.is_set():
        raise LeaseLost("the worker is stopping or lost the lease")
    if cancelled:
        raise Cancelled


def _upsert(job: SendJob, batch: list[Row]) -> dict[int, RowResult]:
    rendered = RenderedBatch(
        emails=[row.email for row in batch],
        rows=[row.payload or "{}" for row in batch],
        planned_new=[row.action == "new" for row in batch],
    )
    return job.destination.upsert_rows(job.list_id, rendered, resubscribe=job.resubscribe)


def _remove(job: SendJob, batch: list[Row]) -> dict[int, RowResult]:
    results = job.destination.remove(job.list_id, [row.email for row in batch], mode=job.removal_mode)
    if len(results) != len(batch):
        raise Fatal(f"the destination answered {len(results)} outcomes for {len(batch)} removals")
    return {
        index: result
        for index, result in enumerate(results)
        if result.outcome is not Outcome.REMOVED or result.code or result.message
    }


_PENDING = (
    "SELECT seq, action, email, hash, profile_key, payload, code, message FROM run_members "
    "WHERE run_id = ? AND seq > ? AND outcome IS NULL AND action IN ({}) ORDER BY seq LIMIT ?"
)
PENDING_UPSERTS = _PENDING.format("'new', 'update'")
PENDING_REMOVALS = _PENDING.format("'remove'")


def _pending(job: SendJob, actions: Sequence[str]) -> Iterator[Row]:
    """Rows still to send, in seq order, read a page at a time (no cursor held across commits).

    Read through the driver's own cursor: a million rows pass here, and each costs little.
    """
    last = 0
    query = PENDING_UPSERTS if "remove" not in actions else PENDING_REMOVALS
    while True:
        with job.sessions() as session:
            page = raw_rows(session, query, (job.run_id, last, PAGE_ROWS))
        if not page:
            return
        yield from map(Row._make, page)
        last = page[-1][0]


def raw_rows(session: Session, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows of a query written with ``?`` placeholders, through the DBAPI cursor."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        query = query.replace("?", "%s")
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]  # a DBAPI connection
    try:
        cursor.execute(query, tuple(params))
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _row_bytes(row: Row) -> int:
    """About what the row takes on the wire: its email, its fields (already JSON), punctuation."""
    return len(row.email) + len(row.payload or "") + ROW_OVERHEAD_BYTES


# One acknowledged batch is a contiguous range of seq among the rows still to send: its rows
# get the outcome their plan expects in one statement, the few exceptions one by one.
_EXPECTED = sa.text(
    "UPDATE run_members SET outcome = CASE action WHEN 'new' THEN 'new' WHEN 'update' THEN 'updated' "
    "ELSE 'removed' END WHERE run_id = :run AND seq BETWEEN :first AND :last AND outcome IS NULL"
)
_EXCEPTION = sa.text(
    "UPDATE run_members SET outcome = :outcome, code = :code, message = :message WHERE run_id = :run AND seq = :seq"
)
_DELIVERED = sa.text(
    "INSERT INTO delivered (export_id, email, hash, profile_key, run_id) "
    "SELECT :export, email, hash, profile_key, :run FROM run_members "
    "WHERE run_id = :run AND seq BETWEEN :first AND :last AND outcome IN ('new', 'updated') "
    "ON CONFLICT (export_id, email) DO UPDATE SET "
    "hash = excluded.hash, profile_key = excluded.profile_key, run_id = excluded.run_id"
)
_UNDELIVER = sa.text(
    "DELETE FROM delivered WHERE export_id = :export AND email IN ("
    "SELECT email FROM run_members WHERE run_id = :run AND seq BETWEEN :first AND :last AND outcome = 'removed')"
)
_PROGRESS = sa.text(
    "UPDATE runs SET batches_done = batches_done + 1, rows_sent = rows_sent + :rows, "
    "new = new + :new, updated = updated + :updated, removed = removed + :removed, "
    "rejected = rejected + :rejected, skipped = skipped + :skipped "
    "WHERE id = :run AND lease_owner = :owner AND status = 'running'"
)
# A checkpoint need not wait for PostgreSQL to flush its WAL (≈ 4 ms a commit here): if the server
# crashed and lost the last ones, the run would resume from an earlier checkpoint and send those
# batches again (upserts are idempotent). WAL order keeps it consistent, and the run's last
# commit, synchronous, makes every checkpoint before it durable.
_NO_FLUSH_WAIT = sa.text("SET LOCAL synchronous_commit = off")
EXPECTED = {"new": Outcome.NEW, "update": Outcome.UPDATED, "remove": Outcome.REMOVED}


def record(job: SendJob, batch: list[Row], unplanned: dict[int, RowResult]) -> bool:
    """Checkpoint one acknowledged batch; returns whether the run was asked to cancel.

    ``unplanned``: the rows (by position) that did not end as their plan expected. Rows of the
    stored plan get their outcomes; rows from a feed are stored with them.
    """
    counts = dict.fromkeys(Outcome, 0)
    for row in batch:
        counts[EXPECTED[row.action]] += 1
    exceptions = []
    for index, result in unplanned.items():
        row = batch[index]
        counts[EXPECTED[row.action]] -= 1
        counts[result.outcome] += 1
        exceptions.append(
            {"outcome": result.outcome.value, "code": result.code, "message": result.message,
             "run": job.run_id, "seq": row.seq}
        )  # fmt: skip
    span = {"run": job.run_id, "export": job.export_id, "first": batch[0].seq, "last": batch[-1].seq}
    with job.write_lock or nullcontext(), job.sessions() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            session.execute(_NO_FLUSH_WAIT)
        if job.feed is not None:
            insert_sent(session, job.run_id, batch, unplanned)
        else:
            if exceptions:
                session.execute(_EXCEPTION, exceptions)
            session.execute(_EXPECTED, span)
        if counts[Outcome.NEW] or counts[Outcome.UPDATED]:
            session.execute(_DELIVERED, span)
        if counts[Outcome.REMOVED]:
            session.execute(_UNDELIVER, span)
        progress = session.execute(
            _PROGRESS,
            {
                "rows": len(batch),
                "new": counts[Outcome.NEW],
                "updated": counts[Outcome.UPDATED],
                "removed": counts[Outcome.REMOVED],
                "rejected": counts[Outcome.REJECTED],
                "skipped": counts[Outcome.SKIPPED],
                "run": job.run_id,
                "owner": job.lease_owner,
            },
        )
        if progress.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
            raise LeaseLost(f"run {job.run_id} is no longer leased to {job.lease_owner}")
        cancel = session.scalar(
            sa.text("SELECT cancel_requested FROM runs WHERE id = :run"), {"run": job.run_id}
        )
    return bool(cancel)


def insert_sent(session: Session, run_id: int, batch: list[Row], unplanned: dict[int, RowResult]) -> None:
    """Store a batch from the feed as ``run_members`` rows, each with the outcome it got."""
    rows: list[tuple[Any, ...]] = []
    for index, row in enumerate(batch):
        result = unplanned.get(index)
        if result is None:
            outcome, code, message = EXPECTED[row.action].value, row.code, row.message
        else:
            outcome, code, message = result.outcome.value, result.code, result.message
        rows.append(
            (
                run_id,
                row.seq,
                row.email,
                row.profile_key,
                row.hash,
                row.payload,
                row.action,
                outcome,
                code,
                message,
            )
        )
    insert_members(session, rows)
