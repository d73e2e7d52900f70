"""Checkpoints of the send phase: each acknowledged batch's outcomes, delivered state and progress,
committed by one thread of its own while the next batches are sent.

A checkpoint commits only while this worker still holds the run's lease (fencing): a worker that
lost its lease cannot write over another's progress. Acknowledged batches are recorded in the
order they came back; those that came back while the last checkpoint was written share the next
transaction.

On PostgreSQL checkpoints commit without waiting for the WAL flush; a server that crashes forgets
the last of them although it acknowledged them. So each checkpoint also commits only if the run's
``batches_done`` is what the previous one left, and the last one is confirmed by a commit that
waits for the flush: a lost checkpoint ends the attempt (``CheckpointsLost``) and the run resumes
from what the store kept, sending those batches again, instead of finishing without them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from segmentsync.db import release_locks_if_cut, store_away
from segmentsync.destinations.base import RowResult
from segmentsync.engine.bulk import insert_members
from segmentsync.engine.lease import LeaseLost
from segmentsync.engine.rows import EXPECTED, PlanRow, literal
from segmentsync.exports.models import MemberAction, Outcome, RunStatus
from segmentsync.observe.context import carry

log = logging.getLogger(__name__)
Acknowledged = tuple[list[PlanRow], dict[int, RowResult]]  # a batch, and its rows that did not go as planned
T = TypeVar("T")


class CheckpointsLost(Exception):  # named as what happened, like LeaseLost
    """The store lost checkpoints it had acknowledged (a crashed server forgets the commits it had not
    flushed yet): the attempt ends and the run resumes from the checkpoints the store kept."""


@dataclass(frozen=True)
class Checkpoints:
    """What the recorder needs to know of the run it checkpoints."""

    sessions: sessionmaker[Session]
    run_id: int
    export_id: int
    lease_owner: str
    from_feed: bool  # the rows are stored by their checkpoint (else they were stored with the plan)
    write_lock: AbstractContextManager[Any] | None = None  # shared with the plan's writer (SQLite)


# Acknowledged batches waiting for their checkpoint, at most: sending pauses beyond it.
RECORD_BACKLOG = 32


class Recorder:
    """Checkpoints acknowledged batches on a thread of its own (``run<id>-record``), in the order
    they came back, so that the next batches are sent meanwhile; the batches that came back while
    it was writing share the next transaction. This thread is the only one of the send phase that
    writes.

    Shared with the sending thread: ``cancelled`` and ``failed`` (events set by this thread, read
    by the sending thread to stop sending); ``error`` is set before ``failed`` and read only after
    :meth:`close` (the join orders it); the queue is behind one condition.
    """

    def __init__(self, checkpoints: Checkpoints) -> None:
        self.checkpoints = checkpoints
        self._done: int | None = None  # the run's batches_done after this recorder's last checkpoint
        self.cancelled = threading.Event()  # a user asked to cancel the run
        self.failed = threading.Event()  # a checkpoint failed: ``error`` says why
        self.error: BaseException | None = None  # LeaseLost, or why the store refused a checkpoint
        self._changed = threading.Condition()
        self._waiting: list[Acknowledged] = []
        self._closed = False
        name = f"run{checkpoints.run_id}-record"
        self._thread = threading.Thread(target=carry(self._run), name=name, daemon=True)
        self._thread.start()

    def put(self, batch: list[PlanRow], unplanned: dict[int, RowResult]) -> None:
        """Queue an acknowledged batch; waits while ``RECORD_BACKLOG`` batches are waiting."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._waiting) < RECORD_BACKLOG or self.failed.is_set())
            if not self.failed.is_set():  # after a failure nothing more is written
                self._waiting.append((batch, unplanned))
                self._changed.notify_all()

    def stopped(self) -> bool:
        """Cancelled, or the checkpoints failed: send no more."""
        return self.cancelled.is_set() or self.failed.is_set()

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
                taken, self._waiting = self._waiting, []
                self._changed.notify_all()
            try:
                if not taken:  # closed: the last checkpoint is made durable, then the thread ends
                    _again_while_away(self.checkpoints, partial(confirm, self.checkpoints, self._done))
                    return
                cancel, self._done = _again_while_away(
                    self.checkpoints, partial(record, self.checkpoints, taken, self._done)
                )
                if cancel:
                    self.cancelled.set()
            except BaseException as exc:  # raised by the sending thread (send._drive)
                with self._changed:
                    self.error = exc
                    self.failed.set()
                    self._waiting.clear()
                    self._changed.notify_all()
                return


# A checkpoint the store dropped (a connection terminated or restarted, SQLite locked past its busy
# timeout) is written again this many times, waiting 0.1, 0.2, 0.4 ... s (at most 2 s) between:
# the batches it records were acknowledged by the platform, and dropping them would send them again.
CHECKPOINT_TRIES = 8


def _again_while_away(job: Checkpoints, write: Callable[[], T]) -> T:
    for attempt in range(CHECKPOINT_TRIES):
        try:
            return write()  # one transaction: a failed one left nothing behind
        except sa.exc.DBAPIError as exc:
            if attempt + 1 == CHECKPOINT_TRIES or not store_away(exc):
                raise
            log.warning("run %s: checkpoint failed (%s); writing it again", job.run_id, exc.orig)
            time.sleep(min(0.1 * 2**attempt, 2.0))
    raise AssertionError("unreachable")


# One acknowledged batch is a contiguous range of seq among the rows still to send: its rows
# get the outcome their plan expects in one statement, the few exceptions one by one.
_AS_EXPECTED = " ".join(
    f"WHEN {literal(MemberAction(action))} THEN {literal(outcome)}" for action, outcome in EXPECTED.items()
)
_EXPECTED = sa.text(
    f"UPDATE run_members SET outcome = CASE action {_AS_EXPECTED} END "  # noqa: S608  # constants
    "WHERE run_id = :run AND seq BETWEEN :first AND :last AND outcome IS NULL"
)
_EXCEPTION = sa.text(
    "UPDATE run_members SET outcome = :outcome, code = :code, message = :message WHERE run_id = :run AND seq = :seq"
)
_DELIVERED_OUTCOMES = f"{literal(Outcome.NEW)}, {literal(Outcome.UPDATED)}"
_DELIVERED = sa.text(
    "INSERT INTO delivered (export_id, email, hash, profile_key, run_id) "  # noqa: S608  # enum values (rows.literal)
    "SELECT :export, email, hash, profile_key, :run FROM run_members "
    f"WHERE run_id = :run AND seq BETWEEN :first AND :last AND outcome IN ({_DELIVERED_OUTCOMES}) "
    "ON CONFLICT (export_id, email) DO UPDATE SET "
    "hash = excluded.hash, profile_key = excluded.profile_key, run_id = excluded.run_id"
)
_UNDELIVER = sa.text(
    "DELETE FROM delivered WHERE export_id = :export AND email IN ("  # noqa: S608  # enum values (rows.literal)
    f"SELECT email FROM run_members WHERE run_id = :run AND seq BETWEEN :first AND :last AND outcome = {literal(Outcome.REMOVED)})"
)
_FENCE = f"WHERE id = :run AND lease_owner = :owner AND status = {literal(RunStatus.RUNNING)}"
_PROGRESS_SQL = (
    "UPDATE runs SET batches_done = batches_done + :batches, rows_sent = rows_sent + :rows, "  # noqa: S608  # enum values (rows.literal)
    "new = new + :new, updated = updated + :updated, removed = removed + :removed, "
    f"rejected = rejected + :rejected, skipped = skipped + :skipped {_FENCE}"
)
_PROGRESS = sa.text(_PROGRESS_SQL)
_PROGRESS_AFTER = sa.text(_PROGRESS_SQL + " AND batches_done = :done")  # the previous one was kept
# The last checkpoint, confirmed: a commit that waits for the WAL flush (and with it every one before).
_CONFIRM = sa.text(f"UPDATE runs SET batches_done = batches_done {_FENCE} AND batches_done = :done")  # noqa: S608  # constants
# A checkpoint need not wait for PostgreSQL to flush its WAL (≈ 4 ms a commit here): if the server
# crashed and lost the last ones, the run would resume from an earlier checkpoint and send those
# batches again (upserts are idempotent). WAL order keeps it consistent, and the run's last
# commit, synchronous, makes every checkpoint before it durable.
_NO_FLUSH_WAIT = sa.text("SET LOCAL synchronous_commit = off")


@dataclass
class _Tally:
    """What a checkpoint writes, counted from its acknowledged batches."""

    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    exceptions: list[dict[str, Any]] = field(default_factory=list)  # rows that did not go as planned
    spans: list[dict[str, Any]] = field(default_factory=list)  # each batch's seq range
    delivered: list[dict[str, Any]] = field(default_factory=list)  # batches with rows upserted
    undelivered: list[dict[str, Any]] = field(default_factory=list)  # batches with rows removed
    rows: int = 0


def _tally(job: Checkpoints, acknowledged: Sequence[Acknowledged]) -> _Tally:
    tally = _Tally()
    counts, exceptions = tally.counts, tally.exceptions
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
        tally.spans.append(span)
        if here[Outcome.NEW] or here[Outcome.UPDATED]:
            tally.delivered.append(span)
        if here[Outcome.REMOVED]:
            tally.undelivered.append(span)
        for outcome, count in here.items():
            counts[outcome] += count
        tally.rows += len(batch)
    return tally


def record(
    job: Checkpoints, acknowledged: Sequence[Acknowledged], done: int | None = None
) -> tuple[bool, int]:
    """Checkpoint acknowledged batches in one transaction; returns whether the run was asked to
    cancel, and its ``batches_done`` now. ``done``: what the previous checkpoint left (None: the first).

    Each item is (batch, unplanned): the rows (by position) that did not end as their plan
    expected. Rows of the stored plan get their outcomes; rows from a feed are stored with them.
    """
    tally = _tally(job, acknowledged)
    counts = tally.counts
    with job.write_lock or nullcontext(), job.sessions() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            session.execute(_NO_FLUSH_WAIT)
        release_locks_if_cut(session)
        # The fence first: a worker that lost the lease writes nothing (and takes the run's row lock
        # before the rows': the rows a resuming worker stored are never touched).
        progress = session.execute(
            _PROGRESS if done is None else _PROGRESS_AFTER,
            {
                **({} if done is None else {"done": done}),
                "batches": len(acknowledged),
                "rows": tally.rows,
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
            _refused(session, job, done)
        if job.from_feed:
            insert_sent(session, acknowledged)
        else:
            if tally.exceptions:
                session.execute(_EXCEPTION, tally.exceptions)
            session.execute(_EXPECTED, tally.spans)
        if tally.delivered:
            session.execute(_DELIVERED, tally.delivered)
        if tally.undelivered:
            session.execute(_UNDELIVER, tally.undelivered)
        cancel, now = session.execute(
            sa.text("SELECT cancel_requested, batches_done FROM runs WHERE id = :run"), {"run": job.run_id}
        ).one()
    return bool(cancel), int(now)


def confirm(job: Checkpoints, done: int | None) -> None:
    """Make every checkpoint of this recorder durable (a synchronous commit), if the store kept them."""
    if done is None:
        return
    with job.write_lock or nullcontext(), job.sessions() as session, session.begin():
        result = session.execute(_CONFIRM, {"run": job.run_id, "owner": job.lease_owner, "done": done})
        if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
            _refused(session, job, done)


def _refused(session: Session, job: Checkpoints, done: int | None) -> None:
    """Why a checkpoint's fence refused it: another worker's lease, or checkpoints the store lost."""
    run = session.execute(
        sa.text("SELECT lease_owner, status, batches_done FROM runs WHERE id = :run"), {"run": job.run_id}
    ).one_or_none()
    if (
        run is not None
        and done is not None
        and run.lease_owner == job.lease_owner
        and run.status == RunStatus.RUNNING
    ):
        raise CheckpointsLost(
            f"the store lost the checkpoints of {done - run.batches_done} acknowledged batch(es) "
            "(a server crash forgets commits it had not flushed); resumes from those it kept"
        )
    raise LeaseLost(f"run {job.run_id} is no longer leased to {job.lease_owner}")


def insert_sent(session: Session, acknowledged: Sequence[Acknowledged]) -> None:
    """Store batches from the feed as ``run_members`` rows, each with the outcome it got."""
    rows: list[PlanRow] = []
    for batch, unplanned in acknowledged:
        for index, row in enumerate(batch):
            result = unplanned.get(index)
            if result is None:
                outcome, code, message = EXPECTED[row.action].value, row.code, row.message
            else:
                outcome, code, message = result.outcome.value, result.code, result.message
            rows.append(PlanRow._make((*row[:7], outcome, code, message)))
    insert_members(session, rows)
