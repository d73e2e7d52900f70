"""What happens around one run: its log context, its start and end lines, its metrics, its trace.

``engine.run.execute`` handles each run inside :func:`handling`; ``engine.context.set_phase``
calls :func:`phase`. The start line says what is run (and from which phase it resumes), the end
line its status, counts, duration and error; ``segmentsync_runs_total``, ``segmentsync_rows_total``
and ``segmentsync_run_duration_seconds`` are counted from the run as stored when it ends.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from segmentsync.connections.models import Connection
from segmentsync.exports.models import Export, Run, RunStatus
from segmentsync.observe import metrics, tracing
from segmentsync.observe.context import RunFields, run_fields
from segmentsync.runtime import Runtime

log = logging.getLogger("segmentsync.runs")
NO_PLATFORM = "none"  # a run whose export lost its connection


@dataclass
class Handling:
    fields: RunFields
    span: Any
    phase_started: float = field(default_factory=time.perf_counter)
    phase_span: tracing.PhaseSpan = field(default_factory=tracing.PhaseSpan)

    @property
    def platform(self) -> str:
        return self.fields.platform or NO_PLATFORM

    def enter(self, phase: str) -> None:
        if phase == self.fields.phase:
            return
        self._close_phase()
        self.fields.phase = phase
        self.phase_started = time.perf_counter()
        self.phase_span.enter(phase, self.span)

    def _close_phase(self) -> None:
        if self.fields.phase is not None:
            metrics.RUN_DURATION.labels(self.platform, self.fields.phase).observe(
                time.perf_counter() - self.phase_started
            )
        self.phase_span.leave()


_handling: contextvars.ContextVar[Handling | None] = contextvars.ContextVar(
    "segmentsync_handling", default=None
)


def phase(name: str) -> None:
    """The run handled in this context enters phase ``name`` (its log lines say so from now on)."""
    handling = _handling.get()
    if handling is not None:
        handling.enter(name)


@contextmanager
def handling(runtime: Runtime, run_id: int, lease_owner: str) -> Iterator[None]:
    """Handle run ``run_id``: its lines carry its fields; a line, metrics and span when it ends."""
    with runtime.readers() as session:
        row = session.execute(
            sa.select(
                Run.export_id, Run.export_name, Run.trigger, Run.attempt, Run.phase, Run.dry_run,
                Export.connection_id, Connection.type,
            )
            .outerjoin(Export, Export.id == Run.export_id)
            .outerjoin(Connection, Connection.id == Export.connection_id)
            .where(Run.id == run_id)
        ).first()  # fmt: skip
    if row is None:  # gone meanwhile: execute() says so
        yield
        return
    platform = row.type.value if row.type is not None else None
    fields = RunFields(
        run_id=run_id, export_id=row.export_id, connection_id=row.connection_id, platform=platform,
        worker=lease_owner,
    )  # fmt: skip
    trigger = row.trigger.value
    resumed = row.phase.value if row.phase is not None else None
    attributes = {
        "run_id": run_id, "export_id": row.export_id, "export": row.export_name,
        "connection_id": row.connection_id, "platform": platform, "trigger": trigger,
        "attempt": row.attempt + 1, "dry_run": row.dry_run,
    }  # fmt: skip
    started = time.perf_counter()
    with run_fields(fields), tracing.run_span(run_id, attributes) as span:
        state = Handling(fields, span)
        token = _handling.set(state)
        log.info(
            "run %s started: export %r (%s), attempt %s%s",
            run_id, row.export_name, trigger, row.attempt + 1, f", resuming from {resumed}" if resumed else "",
            extra={"event": "run.started", "export": row.export_name, "trigger": trigger,
                   "attempt": row.attempt + 1, "resumed_from": resumed, "dry_run": row.dry_run},
        )  # fmt: skip
        try:
            yield
        finally:
            state._close_phase()
            _handling.reset(token)
            seconds = time.perf_counter() - started
            _ended(runtime, run_id, lease_owner, state, trigger, seconds, span)


def _ended(
    runtime: Runtime, run_id: int, lease_owner: str, state: Handling, trigger: str, seconds: float, span: Any
) -> None:
    with runtime.readers() as session:
        run = session.execute(
            sa.select(
                Run.status, Run.lease_owner, Run.error_code, Run.error, Run.profiles,
                *(getattr(Run, name) for name in metrics.OUTCOMES),
            ).where(Run.id == run_id)
        ).first()  # fmt: skip
    if run is None:
        return
    platform = state.platform
    metrics.RUN_DURATION.labels(platform, "total").observe(seconds)
    if run.status is RunStatus.RUNNING:  # still running: our lease was lost, or the worker stops
        owner = "another worker" if run.lease_owner not in (None, lease_owner) else "the next worker"
        log.warning(
            "run %s paused after %.1f s: %s resumes it from its last checkpoint", run_id, seconds, owner,
            extra={"event": "run.paused", "duration_seconds": round(seconds, 3), "lease_owner": run.lease_owner},
        )  # fmt: skip
        tracing.set_attributes(span, {"status": "paused"})
        return
    status = run.status.value
    metrics.RUNS.labels(platform, trigger, status).inc()
    counts = {name: int(getattr(run, name) or 0) for name in metrics.OUTCOMES}
    finished = run.status in (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED_WITH_REJECTIONS)
    if finished:
        for outcome, count in counts.items():
            metrics.ROWS.labels(platform, outcome).inc(count)
    level = {
        RunStatus.FAILED: logging.ERROR,
        RunStatus.FAILED_RETRY: logging.WARNING,
        RunStatus.SUCCEEDED_WITH_REJECTIONS: logging.WARNING,
        RunStatus.AWAITING_CONFIRMATION: logging.WARNING,
    }.get(run.status, logging.INFO)
    summary = ", ".join(f"{name} {count:,}" for name, count in counts.items() if count)
    log.log(
        level,
        "run %s ended: %s in %.1f s%s%s",
        run_id, status, seconds, f" ({summary})" if summary else "",
        f"; {run.error_code or 'error'}: {run.error}" if run.error else "",
        extra={"event": "run.ended", "status": status, "duration_seconds": round(seconds, 3),
               "profiles": run.profiles, **counts, "error_code": run.error_code, "error": run.error},
    )  # fmt: skip
    tracing.set_attributes(span, {"status": status, "error_code": run.error_code, **counts})
    if run.status is RunStatus.FAILED:
        tracing.mark_failed(span, run.error or status)
