"""The scheduler: on every tick, start the system refreshes and queue the cron runs that are due.

``tick(runtime, now)`` is idempotent, and safe to call from several processes at the same instant:

* a system refresh is claimed by inserting its ``SystemRefresh`` row (``scheduled_for`` is unique):
  only the process whose insert succeeds refreshes the segments and queues the exports;
* every scheduled run carries its ``scheduled_for`` and ``(export_id, scheduled_for)`` is unique,
  so the same due time is never queued twice, whoever tries.

A due time is only acted on within ``grace`` (one hour) of being due, and never if it came before
the schedule (or the export) was last saved: a scheduler that was down for a day runs the latest
missed refresh once, not every one it missed. A scheduled run that finds its export already
running is recorded as *skipped* ("already running") instead of doubling it; a run whose segment
failed to refresh is recorded as *skipped* ("a dependency failed").
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from segmentsync import counts
from segmentsync.auth import audit
from segmentsync.db import database_now, transaction
from segmentsync.errors import Conflict, SegmentSyncError
from segmentsync.exports import runs
from segmentsync.exports.models import Export, ExportSegment, Run, RunStatus, ScheduleMode, Trigger
from segmentsync.runtime import Runtime
from segmentsync.scheduling import schedule
from segmentsync.scheduling.models import SystemRefresh
from segmentsync.segments.service import refresh_many

log = logging.getLogger(__name__)

MISFIRE_GRACE = timedelta(hours=1)


@dataclass
class TickResult:
    """What one tick did (for logs and tests)."""

    refreshes: list[datetime] = field(default_factory=list)  # system refreshes this process ran
    queued: list[int] = field(default_factory=list)  # run ids queued
    skipped: list[int] = field(default_factory=list)  # run ids recorded as skipped


def tick(runtime: Runtime, now: datetime, *, grace: timedelta = MISFIRE_GRACE) -> TickResult:
    result = TickResult()
    due = _due_system_refresh(runtime, now, grace)
    if due is not None:
        system_refresh(runtime, due, now=now, result=result)
    _queue_cron_exports(runtime, now, grace, result)
    return result


# ---------------------------------------------------------------- the system refresh


def _due_system_refresh(runtime: Runtime, now: datetime, grace: timedelta) -> datetime | None:
    with runtime.readers() as session:
        row = schedule.load(session)
        if not row.enabled or not schedule.session_bound(row):
            return None
        spec = schedule.spec_of(row)
        lower = max(now - grace, row.updated_at)
        due = schedule.latest_due(spec, lower, now)
        if due is None:
            return None
        done = session.scalar(sa.select(SystemRefresh.id).where(SystemRefresh.scheduled_for == due))
    return None if done is not None else due


def system_refresh(
    runtime: Runtime,
    scheduled_for: datetime,
    *,
    now: datetime,
    trigger: str = "schedule",
    result: TickResult | None = None,
) -> int | None:
    """Refresh the segments of the exports scheduled "with system refresh", then queue them.

    Returns the SystemRefresh id, or None if another process claimed this refresh first.
    """
    result = result if result is not None else TickResult()
    refresh_id = _claim_refresh(runtime, scheduled_for, now, trigger)
    if refresh_id is None:
        return None
    result.refreshes.append(scheduled_for)
    exports = _scheduled_exports(runtime, ScheduleMode.SYSTEM)
    segment_ids = sorted({sid for _, _, sids in exports for sid in sids})
    failures = refresh_segments(runtime, segment_ids, now)
    for export_id, _name, sids in exports:
        failed = [failures[sid] for sid in sids if sid in failures]
        reason = "a dependency failed: " + "; ".join(failed) if failed else None
        with transaction(runtime.sessions) as session:
            queue_scheduled(
                session,
                export_id=export_id,
                scheduled_for=scheduled_for,
                now=now,
                reason=reason,
                result=result,
            )
    _finish_refresh(runtime, refresh_id, failures, result)
    return refresh_id


def _claim_refresh(runtime: Runtime, scheduled_for: datetime, now: datetime, trigger: str) -> int | None:
    try:
        with transaction(runtime.sessions) as session:
            refresh = SystemRefresh(
                scheduled_for=scheduled_for, trigger=trigger, started_at=now, status="running"
            )
            session.add(refresh)
            session.flush()
            return refresh.id
    except IntegrityError:  # another scheduler claimed the same refresh: it does the work
        return None


def _finish_refresh(runtime: Runtime, refresh_id: int, failures: dict[int, str], result: TickResult) -> None:
    with transaction(runtime.sessions) as session:
        refresh = session.get(SystemRefresh, refresh_id)
        if refresh is None:
            return
        refresh.finished_at = runtime.clock()
        refresh.status = "failed" if failures else "succeeded"
        refresh.error = "; ".join(failures.values()) or None
        refresh.details = {
            "segments_failed": sorted(failures),
            "runs_queued": list(result.queued),
            "runs_skipped": list(result.skipped),
        }


def _scheduled_exports(runtime: Runtime, mode: ScheduleMode) -> list[tuple[int, str, list[int]]]:
    """(id, name, segment ids) of the exports with this schedule mode and a connection."""
    with runtime.readers() as session:
        rows = session.execute(
            sa.select(Export.id, Export.name, ExportSegment.segment_id)
            .outerjoin(ExportSegment, ExportSegment.export_id == Export.id)
            .where(Export.schedule_mode == mode, Export.connection_id.is_not(None))
            .order_by(Export.name, ExportSegment.segment_id)
        ).all()
    exports: dict[int, tuple[int, str, list[int]]] = {}
    for export_id, name, segment_id in rows:
        entry = exports.setdefault(export_id, (export_id, name, []))
        if segment_id is not None:
            entry[2].append(segment_id)
    return list(exports.values())


def refresh_segments(runtime: Runtime, segment_ids: list[int], now: datetime) -> dict[int, str]:
    """Refresh the segments (one scan; counts and errors stored); returns the failures by id."""
    if not segment_ids:
        return {}
    try:
        with transaction(runtime.sessions) as session:
            results = refresh_many(
                session=session, source=runtime.profiles, segment_ids=segment_ids, actor=None, now=now
            )
    except Exception as exc:  # any failure (a segment removed meanwhile, a bug) fails them all
        message = exc.message if isinstance(exc, SegmentSyncError) else f"{exc.__class__.__name__}: {exc}"
        log.warning("system refresh: refreshing segments failed: %s", message)
        return dict.fromkeys(segment_ids, f"segments: {message}")
    failures = {r.segment_id: f"segment “{r.segment_name}”: {r.error}" for r in results if r.error}
    for message in failures.values():
        log.warning("system refresh: %s", message)
    return failures


# ---------------------------------------------------------------- exports with their own cron


def _queue_cron_exports(runtime: Runtime, now: datetime, grace: timedelta, result: TickResult) -> None:
    with runtime.readers() as session:
        exports = session.execute(
            sa.select(Export.id, Export.cron, Export.timezone, Export.updated_at).where(
                Export.schedule_mode == ScheduleMode.CRON, Export.connection_id.is_not(None)
            )
        ).all()
    for export_id, cron, timezone, updated_at in exports:
        if not cron:
            continue
        try:
            due = schedule.cron_latest_due(cron, timezone, max(now - grace, updated_at), now)
        except SegmentSyncError as exc:  # validated on save; an edited database row is reported
            log.warning("export %s: bad schedule: %s", export_id, exc.message)
            continue
        if due is None:
            continue
        with transaction(runtime.sessions) as session:
            queue_scheduled(session, export_id=export_id, scheduled_for=due, now=now, result=result)


# ---------------------------------------------------------------- queueing one scheduled run


def queue_scheduled(
    session: Session,
    *,
    export_id: int,
    scheduled_for: datetime,
    now: datetime,
    reason: str | None = None,
    result: TickResult | None = None,
) -> Run | None:
    """Queue the export's run for ``scheduled_for`` once; skipped (recorded) if it cannot run.

    ``reason`` set: record a skipped run with that reason (a dependency failed). Returns the run
    (queued or skipped), or None when this due time was already handled by someone else.
    """
    export = session.get(Export, export_id)
    if export is None or _already_handled(session, export_id, scheduled_for):
        return None
    run: Run | None
    if reason is not None:
        run = _skipped(session, export, scheduled_for, now, "dependency_failed", reason)
    else:
        running = runs.active_run(session, export_id)
        if running is None:
            run = _start(session, export, scheduled_for, now)
        else:
            run = _skipped(session, export, scheduled_for, now, "already_running", _busy(running))
    if run is not None and result is not None:
        (result.skipped if run.status is RunStatus.SKIPPED else result.queued).append(run.id)
    return run


def _already_handled(session: Session, export_id: int, scheduled_for: datetime) -> bool:
    found = session.scalar(
        sa.select(Run.id).where(Run.export_id == export_id, Run.scheduled_for == scheduled_for)
    )
    return found is not None


def _busy(running: Run) -> str:
    return f"already running: run #{running.id} is {running.status.value.replace('_', ' ')}"


def _start(session: Session, export: Export, scheduled_for: datetime, now: datetime) -> Run | None:
    try:
        return runs.start_run(
            session=session, export=export, actor=None, trigger=Trigger.SCHEDULE, scheduled_for=scheduled_for
        )
    except Conflict as exc:  # a run became active meanwhile (maybe this very due time, elsewhere)
        running = runs.active_run(session, export.id)
        message = _busy(running) if running is not None else exc.message
        return _skipped(session, export, scheduled_for, now, "already_running", message)
    except IntegrityError:  # the same due time was queued by another scheduler just now
        return None


def _skipped(
    session: Session, export: Export, scheduled_for: datetime, now: datetime, code: str, message: str
) -> Run | None:
    run = Run(
        export_id=export.id,
        export_name=export.name,
        trigger=Trigger.SCHEDULE,
        scheduled_for=scheduled_for,
        status=RunStatus.SKIPPED,
        created_at=now,
        finished_at=now,
        error_code=code,
        error=message,
    )
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:  # this due time was handled by another scheduler just now
        return None
    audit.record(
        session, actor=None, action="run.skip", object_type="run", object_id=run.id,
        object_label=export.name, after=_skip_details(run),
    )  # fmt: skip
    return run


def _skip_details(run: Run) -> dict[str, Any]:
    return {
        "scheduled_for": run.scheduled_for.isoformat() if run.scheduled_for else None,
        "reason": run.error,
    }


# ---------------------------------------------------------------- the loop


class Scheduler:
    """Ticks every ``settings.scheduler_interval_seconds`` until told to stop."""

    def __init__(
        self, runtime: Runtime, *, interval: float | None = None, grace: timedelta = MISFIRE_GRACE
    ) -> None:
        self.runtime = runtime
        self.interval = interval if interval is not None else runtime.settings.scheduler_interval_seconds
        self.grace = grace

    def now(self) -> datetime:
        """The store's clock (``db.database_now``), not this process's: schedulers on machines
        whose clocks disagree queue each due time once, on time."""
        with self.runtime.readers() as session:
            return database_now(session)

    def run_forever(self, stop: threading.Event) -> None:
        log.info("scheduler started (every %.0f s)", self.interval)
        while not stop.is_set():
            try:
                done = tick(self.runtime, self.now(), grace=self.grace)
                with transaction(self.runtime.sessions) as session:  # the lists' kept counts, folded
                    counts.compact_all(session)
                if done.refreshes or done.queued or done.skipped:
                    log.info(
                        "scheduler: %d refresh(es), %d run(s) queued, %d skipped",
                        len(done.refreshes), len(done.queued), len(done.skipped),
                    )  # fmt: skip
            except Exception:  # the database may be briefly away; keep ticking
                log.exception("scheduler tick failed")
            stop.wait(self.interval)
        log.info("scheduler stopped")
