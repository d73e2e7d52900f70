"""Send phase: batches through the destination, several in flight, a checkpoint after each.

The rows still to send are read in pages by ``seq`` (keyset pagination, short reads), packed
into batches within the destination's limits and sent from a thread pool; how many are in
flight adapts to the platform (:class:`Window`: from ``limits.concurrency`` up to
``max_concurrency``). Acknowledged batches go, in the order they came back, to a recorder
thread (the only writing one), which commits for each batch — or for the batches that came back
while it wrote the last checkpoint, together — in one transaction: the rows' outcomes, the
export's delivered state and the run's progress; meanwhile the next batches are sent. That
transaction only commits while this worker still holds the run's lease (fencing), so a worker
that lost its lease cannot write over another.
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
from segmentsync.engine.plan import insert_members
from segmentsync.errors import Fatal
from segmentsync.exports.models import Outcome

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
    recorder = _Recorder(job)
    try:
        with ThreadPoolExecutor(max_workers=window.ceiling, thread_name_prefix=f"run{job.run_id}") as pool:
            while True:
                while (
                    failure is None
                    and not recorder.stopped()
                    and not job.stop.is_set()
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
    if recorder.cancelled:
        raise Cancelled


# Acknowledged batches waiting for their checkpoint, at most: sending pauses beyond it.
RECORD_BACKLOG = 32


class _Recorder:
    """Checkpoints acknowledged batches on a thread of its own, in the order they came back, so
    that the next batches are sent meanwhile; the batches that came back while it was writing
    share the next transaction. This thread is the only one of the send phase that writes."""

    def __init__(self, job: SendJob) -> None:
        self.job = job
        self.cancelled = False
        self.error: BaseException | None = None  # LeaseLost, or why the store refused a checkpoint
        self._changed = threading.Condition()
        self._waiting: list[tuple[list[Row], dict[int, RowResult]]] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"run{job.run_id}-record", daemon=True)
        self._thread.start()

    def put(self, batch: list[Row], unplanned: dict[int, RowResult]) -> None:
        """Queue an acknowledged batch; waits while ``RECORD_BACKLOG`` batches are waiting."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._waiting) < RECORD_BACKLOG or self.error is not None)
            if self.error is None:  # after a failure nothing more is written
                self._waiting.append((batch, unplanned))
                self._changed.notify_all()

    def stopped(self) -> bool:
        """Cancelled, or the checkpoints failed: send no more."""
        return self.cancelled or self.error is not None

    def close(self) -> None:
        """Checkpoint what is waiting, then end the thread."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._waiting) or self._closed)
                if not self._waiting:
                    return
                taken, self._waiting = self._waiting, []
                self._changed.notify_all()
            try:
                self.cancelled = record(self.job, taken) or self.cancelled
            except BaseException as exc:  # raised by the sending thread (_drive)
                with self._changed:
                    self.error = exc
                    self._waiting.clear()
                    self._changed.notify_all()
                return


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
    "UPDATE runs SET batches_done = batches_done + :batches, rows_sent = rows_sent + :rows, "
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


def record(job: SendJob, acknowledged: Sequence[tuple[list[Row], dict[int, RowResult]]]) -> bool:
    """Checkpoint acknowledged batches in one transaction; returns whether the run was asked to cancel.

    Each item is (batch, unplanned): the rows (by position) that did not end as their plan
    expected. Rows of the stored plan get their outcomes; rows from a feed are stored with them.
    """
    counts = dict.fromkeys(Outcome, 0)
    exceptions: list[dict[str, Any]] = []
    spans: list[dict[str, Any]] = []
    delivered: list[dict[str, Any]] = []
    undelivered: list[dict[str, Any]] = []
    rows = 0
    for batch, unplanned in acknowledged:
        here = dict.fromkeys(Outcome, 0)
        for row in batch:
            here[EXPECTED[row.action]] += 1
        for index, result in unplanned.items():
            row = batch[index]
            here[EXPECTED[row.action]] -= 1
            here[result.outcome] += 1
            exceptions.append(
                {"outcome": result.outcome.value, "code": result.code, "message": result.message,
                 "run": job.run_id, "seq": row.seq}
            )  # fmt: skip
        span = {"run": job.run_id, "export": job.export_id, "first": batch[0].seq, "last": batch[-1].seq}
        spans.append(span)
        if here[Outcome.NEW] or here[Outcome.UPDATED]:
            delivered.append(span)
        if here[Outcome.REMOVED]:
            undelivered.append(span)
        for outcome, count in here.items():
            counts[outcome] += count
        rows += len(batch)
    with job.write_lock or nullcontext(), job.sessions() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            session.execute(_NO_FLUSH_WAIT)
        if job.feed is not None:
            insert_sent(session, job.run_id, acknowledged)
        else:
            if exceptions:
                session.execute(_EXCEPTION, exceptions)
            session.execute(_EXPECTED, spans)
        if delivered:
            session.execute(_DELIVERED, delivered)
        if undelivered:
            session.execute(_UNDELIVER, undelivered)
        progress = session.execute(
            _PROGRESS,
            {
                "batches": len(acknowledged),
                "rows": rows,
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


def insert_sent(
    session: Session, run_id: int, acknowledged: Sequence[tuple[list[Row], dict[int, RowResult]]]
) -> None:
    """Store batches from the feed as ``run_members`` rows, each with the outcome it got."""
    rows: list[tuple[Any, ...]] = []
    for batch, unplanned in acknowledged:
        for index, row in enumerate(batch):
            result = unplanned.get(index)
            if result is None:
                outcome, code, message = EXPECTED[row.action].value, row.code, row.message
            else:
                outcome, code, message = result.outcome.value, result.code, result.message
            rows.append(
                (run_id, row.seq, row.email, row.profile_key, row.hash, row.payload, row.action, outcome, code, message)
            )  # fmt: skip
    insert_members(session, rows)
