"""Runs as users see them: start, cancel, confirm a mirror removal, list, per-row outcomes, CSV."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from segmentsync.auth import audit
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action, check
from segmentsync.connections.models import Connection
from segmentsync.db import utcnow
from segmentsync.errors import N_, Conflict, NotFound
from segmentsync.exports import run_rows
from segmentsync.exports.grants import require_edit
from segmentsync.exports.models import (
    ACTIVE_STATUSES,
    Export,
    Run,
    RunStatus,
    Trigger,
)
from segmentsync.notifications import hooks

CSV_COLUMNS = ("email", "profile_key", "action", "outcome", "code", "message")


class Doorbell:
    """Rung when a transaction that queued a run commits, for the workers of this process
    (``segmentsync serve``, ``segmentsync worker``): an idle worker then claims at once instead of
    at its next poll. Workers of other processes do not hear it; they poll."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rings = 0  # a count, not a flag: two runs queued at once wake two workers

    def ring(self) -> None:
        with self._lock:
            self.rings += 1


QUEUED = Doorbell()
_QUEUED_KEY = "segmentsync.run_queued"


def _ring_when_committed(session: Session) -> None:
    session.info[_QUEUED_KEY] = True


@sa.event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_QUEUED_KEY, False):
        QUEUED.ring()


@sa.event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_QUEUED_KEY, None)  # nothing was queued after all


def active_run(session: Session, export_id: int) -> Run | None:
    return session.scalar(sa.select(Run).where(Run.export_id == export_id, Run.status.in_(ACTIVE_STATUSES)))


def start_run(
    *,
    session: Session,
    export: Export,
    actor: User | None,
    dry_run: bool = False,
    full_resync: bool = False,
    trigger: Trigger = Trigger.ON_DEMAND,
    scheduled_for: datetime | None = None,
) -> Run:
    """Queue a run (saving an export never does this). One active run per export: Conflict."""
    if actor is not None:
        check(actor, Action.EXPORTS_RUN)
        connection = session.get(Connection, export.connection_id) if export.connection_id else None
        require_edit(actor, connection, export.name)
    if export.connection_id is None:
        raise Conflict(
            "the export “%(export_name)s” has no connection; attach one before running it",
            params={"export_name": export.name},
            code="no_connection",
        )
    run = Run(
        export_id=export.id,
        export_name=export.name,
        trigger=trigger,
        triggered_by_id=actor.id if actor else None,
        scheduled_for=scheduled_for,
        dry_run=dry_run,
        full_resync=full_resync,
    )
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError as exc:
        running = active_run(session, export.id)
        if running is not None:
            raise Conflict(
                "the export “%(export_name)s” already has an active run (#%(running_id)s, %(status)s)",
                params={"export_name": export.name, "running_id": running.id, "status": running.status.value},
                code="run_active",
                details={"run_id": running.id},
            ) from exc
        raise
    _ring_when_committed(session)
    audit.record(
        session,
        actor=actor,
        action="run.start",
        object_type="run",
        object_id=run.id,
        object_label=export.name,
        after={"dry_run": dry_run, "full_resync": full_resync, "trigger": trigger.value},
    )
    return run


def get_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound("there is no run #%(run_id)s", params={"run_id": run_id})
    return run


def _check_can_change(session: Session, run: Run, actor: User) -> None:
    check(actor, Action.RUNS_CANCEL)
    export = session.get(Export, run.export_id) if run.export_id else None
    connection = session.get(Connection, export.connection_id) if export and export.connection_id else None
    require_edit(actor, connection, run.export_name)


def cancel_run(*, session: Session, run_id: int, actor: User) -> Run:
    """Queued or waiting runs end at once; a running one is "cancelling": it starts no new batch
    (its worker sees the flag within ``engine.lease.CANCEL_POLL_SECONDS``) and ends cancelled once
    its batches in flight are back and recorded. What the platform already accepted stays."""
    run = get_run(session, run_id)
    _check_can_change(session, run, actor)
    if run.status is RunStatus.RUNNING:
        run.cancel_requested = True
    elif run.status in (RunStatus.QUEUED, RunStatus.FAILED_RETRY, RunStatus.AWAITING_CONFIRMATION):
        run.status = RunStatus.CANCELLED
        run.finished_at = utcnow()
        run.error = N_("cancelled by a user")
        hooks.run_cancelled(session, run)
    else:
        raise Conflict(
            "run #%(run_id)s has already ended (%(status)s)",
            params={"run_id": run.id, "status": run.status.value},
            code="run_ended",
        )
    audit.record(
        session,
        actor=actor,
        action="run.cancel",
        object_type="run",
        object_id=run.id,
        object_label=run.export_name,
    )
    return run


def cancelling(run: Run) -> bool:
    """Cancel was asked while the run runs: it sends nothing new and waits for its batches in flight."""
    return run.status is RunStatus.RUNNING and run.cancel_requested


def confirm_removals(*, session: Session, run_id: int, actor: User) -> Run:
    """Let a run stopped by the mirror guard go ahead with its removals (same snapshot)."""
    run = get_run(session, run_id)
    _check_can_change(session, run, actor)
    if run.status is not RunStatus.AWAITING_CONFIRMATION:
        raise Conflict(
            "run #%(run_id)s is not waiting for a confirmation",
            params={"run_id": run.id},
            code="not_awaiting",
        )
    try:
        with session.begin_nested():
            run.status = RunStatus.QUEUED
            run.confirm_removals = True
            run.error = run.error_code = None
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "another run of this export is active; wait for it or cancel it", code="run_active"
        ) from exc
    _ring_when_committed(session)
    planned = (run.plan or {}).get("remove")
    audit.record(
        session,
        actor=actor,
        action="run.confirm_removals",
        object_type="run",
        object_id=run.id,
        object_label=run.export_name,
        after={"removals": planned},
    )
    return run


def rows_query(run_id: int, *, email: str | None = None, outcome: str | None = None) -> sa.Select[Any]:
    """The run's ``run_members`` rows matching the filters (checked: Invalid), in seq order."""
    return run_rows.members_query(run_id, run_rows.Filter.of(email, outcome))


# ---------------------------------------------------------------- a run's rows, wherever kept
# (exports.run_rows: run_members and the compactly kept unchanged members, read by seeking)


def rows_page(
    session: Session,
    run_id: int,
    *,
    email: str | None,
    outcome: str | None,
    limit: int,
    offset: int = 0,
    after: int | None = None,
) -> tuple[list[run_rows.Row], int | None]:
    """One page of the run's per-row outcomes in seq order, and how many match in all.

    ``after`` (a cursor: the last seq of the previous page) reads the page by seeking, at any
    depth, and counts nothing (the total is None unless the run's stored counts give it);
    otherwise the page is the one at ``offset``.
    """
    where = run_rows.Filter.of(email, outcome)
    run = get_run(session, run_id)
    if after is not None:
        total = run_rows.stored_total(session, run, where)
        if total is not None and not run_rows.has_rows(session, run_id):
            total = 0
        return run_rows.page_after(session, run_id, where, after, limit), total
    return run_rows.page_at(session, run, where, offset, limit)


def iter_rows(
    readers: sessionmaker[Session], run_id: int, *, email: str | None = None, outcome: str | None = None
) -> Iterator[run_rows.Plain]:
    """Every matching row in seq order as plain tuples (``run_rows.Plain``), read a chunk at a
    time in short read-only sessions."""
    for chunk in run_rows.plain_rows(readers, run_id, run_rows.Filter.of(email, outcome)):
        yield from chunk.rows() if isinstance(chunk, run_rows.UnchangedLines) else chunk


def csv_lines(
    session: Session, run_id: int, *, email: str | None = None, outcome: str | None = None
) -> Iterator[list[str]]:
    """The run's per-row outcomes as CSV rows (header first)."""
    yield list(CSV_COLUMNS)
    readers = sessionmaker(bind=session.get_bind())
    for _seq, address, key, action, result, code, message in iter_rows(
        readers, run_id, email=email, outcome=outcome
    ):
        yield [address, key or "", action, result or "pending", code or "", message or ""]


def progress(run: Run, now: datetime) -> dict[str, Any]:
    """Batches done/total, rows per second and ETA of the send phase.

    While a batch is with the platform, the rows it reports done (``in_flight_rows``, see
    ``engine/in_flight.py``) count towards the percentage, rate and ETA; no total is ever
    exceeded (a batch the destination had to split is one more than estimated).
    """
    rate = None
    eta = None
    running = run.status is RunStatus.RUNNING
    in_flight = (run.plan or {}).get("in_flight_rows", 0) if running else 0
    done = min(
        run.rows_sent + (in_flight if isinstance(in_flight, int) else 0), run.rows_to_send or run.rows_sent
    )
    if run.send_started_at and done:
        end = run.finished_at or now
        seconds = max((end - run.send_started_at).total_seconds(), 0.001)
        rate = done / seconds
        remaining = max(run.rows_to_send - done, 0)
        eta = remaining / rate if rate and running else None
    percent = 100.0 * done / run.rows_to_send if run.rows_to_send else (100.0 if run.finished_at else 0.0)
    batches_total = max(
        run.batches_total, run.batches_done + (1 if running and run.rows_sent < run.rows_to_send else 0)
    )
    return {
        "phase": run.phase.value if run.phase else None,
        "batches_done": run.batches_done,
        "batches_total": batches_total,
        "rows_sent": run.rows_sent,
        "rows_to_send": run.rows_to_send,
        "percent": round(min(percent, 100.0), 1),
        "rows_per_second": round(rate, 1) if rate else None,
        "eta_seconds": round(eta, 1) if eta is not None else None,
    }
