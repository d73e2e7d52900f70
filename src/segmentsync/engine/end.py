"""How a run leaves the running state: finished (counted), failed (to retry or for good), cancelled.

Only the worker that holds the lease can end the run. An ended run drops its kept snapshot (a
run that will retry keeps it), writes its lifecycle event and the alert rules it decides
(``notifications.hooks.run_ended``, in the same transaction), and the per-row outcomes of
the export's older runs are pruned (their counts stay).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

import sqlalchemy as sa

from segmentsync.connections.access import is_auth_failure
from segmentsync.connections.models import Connection
from segmentsync.connections.service import mark_needs_attention
from segmentsync.db import database_now
from segmentsync.engine import resume
from segmentsync.engine.context import Context, set_phase
from segmentsync.errors import ConfigError, QuotaExceeded, Retriable, SegmentSyncError
from segmentsync.exports.models import Export, Run, RunPhase, RunStatus, RunUnchanged
from segmentsync.notifications import hooks
from segmentsync.runtime import Runtime

MAX_ATTEMPTS = 5
RETRY_DELAYS = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(minutes=30))


def finish(ctx: Context) -> RunStatus | None:
    set_phase(ctx, RunPhase.FINISH)
    with ctx.runtime.sessions() as session, session.begin():
        counts: dict[str, int] = dict(
            session.execute(
                sa.text("SELECT outcome, count(*) FROM run_members WHERE run_id = :run GROUP BY outcome"),
                {"run": ctx.run.id},
            ).all()
        )
        kept = session.scalar(sa.select(RunUnchanged.count).where(RunUnchanged.run_id == ctx.run.id))
        counts["unchanged"] = counts.get("unchanged", 0) + (kept or 0)
    status = RunStatus.SUCCEEDED_WITH_REJECTIONS if counts.get("rejected") else RunStatus.SUCCEEDED
    return end(
        ctx.runtime,
        ctx.run.id,
        ctx.lease_owner,
        status,
        None,
        None,
        counts={name: int(counts.get(name, 0)) for name in _COUNT_COLUMNS},
    )


_COUNT_COLUMNS = ("invalid", "new", "updated", "unchanged", "removed", "rejected", "skipped")


def failed(runtime: Runtime, run_id: int, lease_owner: str, exc: SegmentSyncError) -> RunStatus | None:
    """Failed (will retry) for transient errors while attempts remain, else failed (permanent)."""
    if isinstance(exc, ConfigError) and is_auth_failure(exc):
        _mark_connection(runtime, run_id, exc.message)
    with runtime.sessions() as session:
        attempt = (session.scalar(sa.select(Run.attempt).where(Run.id == run_id)) or 0) + 1
    ended = partial(end, runtime, run_id, lease_owner, attempt=attempt)
    if isinstance(exc, QuotaExceeded):
        return ended(RunStatus.FAILED_RETRY, exc.code, exc.message, retry_at=exc.resets_at)
    if isinstance(exc, Retriable) and attempt < MAX_ATTEMPTS:
        delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]
        message = f"{exc.message} (attempt {attempt} of {MAX_ATTEMPTS}; will retry)"
        with runtime.readers() as session:  # claims compare it with the store's clock
            retry_at = database_now(session) + delay
        return ended(RunStatus.FAILED_RETRY, exc.code, message, retry_at=retry_at)
    return ended(RunStatus.FAILED, exc.code, exc.message)


def _mark_connection(runtime: Runtime, run_id: int, message: str) -> None:
    with runtime.sessions() as session, session.begin():
        connection_id = session.scalar(
            sa.select(Export.connection_id).join(Run, Run.export_id == Export.id).where(Run.id == run_id)
        )
        connection = session.get(Connection, connection_id) if connection_id is not None else None
        if connection is not None:
            mark_needs_attention(session=session, connection=connection, message=message)


def end(
    runtime: Runtime,
    run_id: int,
    lease_owner: str,
    status: RunStatus,
    code: str | None,
    message: str | None,
    *,
    counts: dict[str, int] | None = None,
    retry_at: datetime | None = None,
    attempt: int | None = None,
) -> RunStatus | None:
    """Leave the running state (only if we still hold the lease) and tell whoever listens."""
    now = runtime.clock()
    values: dict[str, Any] = {"status": status, "error_code": code, "error": message, "lease_owner": None}
    values["lease_expires_at"] = None
    values["next_attempt_at"] = retry_at
    if status is not RunStatus.FAILED_RETRY:
        values["finished_at"] = now
    if counts:
        values.update(counts)
    if attempt is not None:
        values["attempt"] = attempt
    with runtime.sessions() as session, session.begin():
        result = session.execute(
            sa.update(Run).where(Run.id == run_id, Run.lease_owner == lease_owner).values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
            return None
        if status is not RunStatus.FAILED_RETRY:
            resume.forget(session, run_id)
        hooks.run_ended(session, runtime.settings, run_id, now)  # its event, notices and alerts
    if status is not RunStatus.FAILED_RETRY:
        _prune_rows(runtime, run_id)
    return status


_PRUNE = [
    sa.text(
        f"DELETE FROM {table} WHERE run_id IN (SELECT id FROM runs WHERE export_id = :export AND id NOT IN ("  # noqa: S608  # two table names of ours
        "SELECT id FROM runs WHERE export_id = :export ORDER BY id DESC LIMIT :keep))"
    )
    for table in ("run_members", "run_unchanged")
]


def _prune_rows(runtime: Runtime, run_id: int) -> None:
    """Keep the per-row outcomes of the export's latest runs only (their counts stay forever)."""
    with runtime.sessions() as session, session.begin():
        export_id = session.scalar(sa.select(Run.export_id).where(Run.id == run_id))
        if export_id is not None:
            keep = max(runtime.settings.run_history_rows_kept, 1)
            for statement in _PRUNE:
                session.execute(statement, {"export": export_id, "keep": keep})
