"""Execute one run: claim → snapshot → plan → send → finish.

A worker claims the run (``scheduling.worker``) and calls :func:`execute` while it holds the
run's lease. :func:`_phases` is the whole run, top to bottom; each phase is a step
(``Step``: a function of the run's :class:`Work`), and where an interrupted run starts again is
decided in one place, ``resume.start_of``. Every phase change and every acknowledged batch is
committed, so a run interrupted at any point resumes from its last checkpoint (see
``resume.py``'s table).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import sqlalchemy as sa

from segmentsync.db import store_away
from segmentsync.destinations.base import Limits
from segmentsync.engine import bulk, end, failures, plan, resume, snapshot, source
from segmentsync.engine.checkpoint import CheckpointsLost
from segmentsync.engine.context import (
    Context,
    DestinationFactory,
    check_stop,
    default_destination,
    prepare,
    set_phase,
)
from segmentsync.engine.lease import Cancelled, CancelWatch, LeaseLost
from segmentsync.engine.overlap import SendWhilePlanning, job_for, overlaps
from segmentsync.engine.send import REMOVE_BATCH, send
from segmentsync.engine.workspace import SENDING_MEMORY_LIMIT, Workspace
from segmentsync.errors import Fatal, Retriable, SegmentSyncError
from segmentsync.exports.models import MemberAction, Run, RunPhase, RunStatus, RunUnchanged
from segmentsync.observe import runs as observe_runs
from segmentsync.runtime import Runtime

log = logging.getLogger(__name__)

STREAM_BATCH_ROWS = 50_000
__all__ = ["DestinationFactory", "execute", "warm_up"]


def execute(
    runtime: Runtime,
    run_id: int,
    *,
    lease_owner: str,
    stop: threading.Event | None = None,
    destination_factory: DestinationFactory | None = None,
) -> RunStatus | None:
    """Run (or resume) the run; returns its new status, or None if the lease was lost."""
    stop = stop or threading.Event()
    with observe_runs.handling(runtime, run_id, lease_owner):  # log context, run metrics, trace
        return _execute(runtime, run_id, lease_owner, stop, destination_factory)


def _execute(
    runtime: Runtime,
    run_id: int,
    lease_owner: str,
    stop: threading.Event,
    destination_factory: DestinationFactory | None,
) -> RunStatus | None:
    try:
        ctx = prepare(runtime, run_id, lease_owner, stop, destination_factory or default_destination)
        with CancelWatch(runtime.readers, run_id, ctx.cancel):
            return _phases(ctx)
    except LeaseLost:
        log.info("run %s: lease lost or worker stopping; another worker will resume it", run_id)
        return None
    except Cancelled:
        return end.end(runtime, run_id, lease_owner, RunStatus.CANCELLED, None, "cancelled by a user")
    except SegmentSyncError as exc:
        return end.failed(runtime, run_id, lease_owner, exc)
    except CheckpointsLost as exc:
        return failures.store_failed(runtime, run_id, lease_owner, exc)
    except sa.exc.DBAPIError as exc:
        if store_away(exc):
            return failures.store_failed(runtime, run_id, lease_owner, exc)
        if failures.disk_full(exc):
            return failures.no_room(runtime, run_id, lease_owner, exc)
        return failures.unexpected(runtime, run_id, lease_owner, exc)
    except Exception as exc:  # a bug or an unexpected outage: retried, then reported
        if failures.disk_full(exc):
            return failures.no_room(runtime, run_id, lease_owner, exc)
        return failures.unexpected(runtime, run_id, lease_owner, exc)


def warm_up(runtime: Runtime) -> None:
    """Load what a run otherwise loads on first use — the profile source's Ibis backend, with its
    SQL compilers — for a long-lived worker, before it waits for runs."""
    runtime.profiles.warm()


def _phases(ctx: Context) -> RunStatus | None:
    """The run from where it stands (``resume.start_of``) to its end."""
    with ctx.runtime.readers() as session:
        start = resume.start_of(ctx.run.phase, kept=resume.kept(session, ctx.run.id))
    try:
        if start.plan:
            planned, sent = _snapshot_and_plan(ctx, start)  # phases snapshot and plan
            if sent:  # its rows were sent while the plan was stored
                return end.finish(ctx)
            if ctx.run.dry_run:
                return end.end(ctx.runtime, ctx.run.id, ctx.lease_owner, RunStatus.SUCCEEDED, None, None)
            if not may_send(ctx.run, planned):
                return _guard_trips(ctx, planned)
        set_phase(ctx, RunPhase.SEND)  # phase send: the stored rows without an outcome
        if _has_rows_to_send(ctx):
            job = job_for(ctx, ctx.destination.get())
            _count_batches(ctx, job.limits())
            send(job)
    finally:
        ctx.destination.close()
    return end.finish(ctx)  # phase finish


def may_send(run: Run, planned: plan.Plan) -> bool:
    """Not a dry run, and not stopped by the mirror guard (unless confirmed)."""
    return not run.dry_run and not (planned.guard_trips() and not run.confirm_removals)


def _guard_trips(ctx: Context, planned: plan.Plan) -> RunStatus | None:
    message = (
        f"This run would remove {planned.remove:,} of the {planned.delivered_before:,} members it "
        "delivered (more than half). Nothing was sent. Confirm to go ahead, or check the "
        "segments and source."
    )
    return end.end(
        ctx.runtime, ctx.run.id, ctx.lease_owner, RunStatus.AWAITING_CONFIRMATION, "mirror_guard", message
    )


@dataclass
class Work:
    """A run's snapshot and plan in its workspace, as the steps fill them in."""

    ctx: Context
    ws: Workspace
    members: Any  # the profile source's query; None: plan from the run's kept snapshot
    mapping: snapshot.Mapping
    first_seq: int  # the seq of the plan's first row (after the rows an earlier attempt sent)
    sent_before: dict[str, int]  # rows an earlier attempt sent, by action
    snap: snapshot.Snapshot | None = None
    fresh: plan.Plan | None = None  # the plan of what is left to do
    planned: plan.Plan = field(default_factory=plan.Plan)  # and what an earlier attempt sent
    overlap: bool = False  # send while storing the plan (the snapshot is kept)
    sending: SendWhilePlanning | None = None
    unchanged: tuple[int, int, bytes] | None = None


Step = Callable[[Work], None]


def _snapshot_and_plan(ctx: Context, start: resume.Start) -> tuple[plan.Plan, bool]:
    """Snapshot, plan and store the plan (sending meanwhile where it pays); returns the plan and
    whether its rows were sent."""
    set_phase(ctx, RunPhase.SNAPSHOT)
    with ctx.runtime.sessions() as session, session.begin():
        first_seq, sent_before = resume.restart(session, ctx.run.id)
        segments = source.segments_of(session, ctx.export.id)
    source.check_segments(segments)
    mapping = source.mapping_of(ctx.export, ctx.runtime.profiles.key, ctx.connection)
    members = None if start.from_kept else source.members_query(ctx, segments, mapping)
    settings = ctx.runtime.settings
    try:
        with Workspace(settings.data_dir / "work", memory_limit=settings.workspace_memory) as ws:
            work = Work(ctx, ws, members, mapping, first_seq, sent_before)
            _steps(work, (take_snapshot, make_plan, start_sending, store_plan))
        _steps(work, (store_unchanged, finish_sending))  # the workspace is closed: its memory freed
    except duckdb.OutOfMemoryException as exc:
        raise Fatal(
            "the run's workspace ran out of memory (%(workspace_memory)s): raise SEGMENTSYNC_WORKSPACE_MEMORY or give the data dir's disk more room. DuckDB said: %(exc)s",
            params={"workspace_memory": settings.workspace_memory, "exc": exc},
            code="workspace_memory",
        ) from exc
    return work.planned, work.sending is not None


def _steps(work: Work, steps: tuple[Step, ...]) -> None:
    try:
        for step in steps:
            step(work)
    except BaseException as exc:
        if work.sending is not None:
            work.sending.abort(exc)  # what is in flight is recorded first
        raise


def take_snapshot(work: Work) -> None:
    """Phase snapshot: the members in the workspace — read from the profile source, or the run's
    kept snapshot (it sent from it before it stopped: the rest is planned from the same members)."""
    ctx, ws = work.ctx, work.ws
    if work.members is None:
        with ctx.runtime.readers() as session:
            work.snap = resume.restore(ws, session, ctx.run.id)
        if work.snap is None:
            raise Retriable("the run's kept snapshot is gone", code="snapshot_gone")
    else:
        profiles = ctx.runtime.profiles
        loaded = profiles.attachable(work.members) or profiles.stream(
            work.members, batch_rows=STREAM_BATCH_ROWS
        )
        work.snap = snapshot.build(ws, loaded, work.mapping)
    set_phase(ctx, RunPhase.PLAN)


def make_plan(work: Work) -> None:
    """Phase plan: each member's action against the export's delivered state; the counts stored."""
    ctx, ws, snap = work.ctx, work.ws, work.snap
    assert snap is not None  # take_snapshot came first
    with ctx.runtime.readers() as session:
        plan.load_delivered(ws, session, ctx.export.id)
        if work.sent_before:
            resume.load_done(ws, session, ctx.run.id)
    work.overlap = work.members is None  # a kept snapshot: sent from before, and sends the rest the same way
    work.fresh = plan.plan(
        ws,
        full_resync=ctx.run.full_resync,
        mirror=ctx.export.sync_mode.value == "mirror",
        template=lambda: ctx.destination.get().row_template(
            ctx.export.list_id, snap.values, consent=snap.consent
        ),
        done=bool(work.sent_before),
        keep=lambda sending, removes, delivered: _keep(work, sending, removes, delivered),
    )
    work.planned = work.fresh.with_sent(work.sent_before)
    early = _sends_early(work)
    with ctx.runtime.sessions() as session, session.begin():
        ctx.update(
            session, profiles=snap.profiles, invalid=work.planned.invalid, unchanged=work.planned.unchanged,
            rows_to_send=work.planned.to_send, plan=work.planned.as_dict(),
            **({"phase": RunPhase.SEND, "send_started_at": ctx.runtime.clock()} if early else {}),
        )  # fmt: skip
    if early:
        ctx.run.phase = RunPhase.SEND
        observe_runs.phase(RunPhase.SEND.value)


def _keep(work: Work, sending: int, removes: int, delivered: int) -> None:
    """Keep the snapshot before anything is sent, where sending while the plan is stored pays for
    keeping it: a run that sends few of its members stores their plan first."""
    counts = plan.Plan(remove=removes, delivered_before=delivered).with_sent(work.sent_before)
    assert work.snap is not None
    if (
        not work.overlap
        and may_send(work.ctx.run, counts)
        and overlaps(sending + removes, work.snap.profiles)
    ):
        with work.ctx.runtime.sessions() as session, session.begin():
            resume.save(work.ws, session, work.ctx.run.id, work.snap)
        work.overlap = True


def _sends_early(work: Work) -> bool:
    return (
        work.overlap
        and work.fresh is not None
        and bool(work.fresh.to_send)
        and may_send(work.ctx.run, work.planned)
    )


def start_sending(work: Work) -> None:
    """Phase send, early: where the snapshot is kept, the sender starts on its own thread and is
    handed the rows to send as the plan is read out."""
    if not _sends_early(work):
        return
    ctx, fresh = work.ctx, work.fresh
    assert fresh is not None
    work.ws.limit_memory(SENDING_MEMORY_LIMIT)
    work.sending = SendWhilePlanning(ctx, ctx.destination.get())
    pending = {MemberAction.NEW: fresh.new + fresh.update, MemberAction.REMOVE: fresh.remove}
    _count_batches(ctx, work.sending.job.limits(), pending)
    work.sending.start()


def store_plan(work: Work) -> None:
    """The plan out of the workspace into ``run_members``, chunk by chunk — its rows to send handed
    to the sender instead, where it runs — and the unchanged members compressed."""
    ctx, sending = work.ctx, work.sending
    for chunk in plan.planned_rows(work.ws, ctx.run.id, work.first_seq):
        check_stop(ctx)
        rest = chunk if sending is None else sending.hand(chunk)
        if rest is None:
            break  # the sender stopped: join() below says why
        if rest:
            with ctx.write_lock, ctx.runtime.sessions() as session, session.begin():
                bulk.insert_members(session, rest)
    if sending is not None and sending.failed():
        sending.join()  # raises why it stopped; the plan is left unfinished, as it is
    if sending is not None and sending.open:
        sending.close()
    work.unchanged = plan.unchanged(work.ws, work.first_seq)


def store_unchanged(work: Work) -> None:
    ctx = work.ctx
    with ctx.write_lock, ctx.runtime.sessions() as session, session.begin():
        if work.unchanged is not None:
            first, count, data = work.unchanged
            session.add(RunUnchanged(run_id=ctx.run.id, first_seq=first, count=count, data=data))
        if work.sending is None:
            bulk.analyze(session, stored(work))


def stored(work: Work) -> int:
    """The rows this attempt of the run stored in ``run_members`` (all but the unchanged)."""
    fresh = work.fresh
    return 0 if fresh is None else fresh.to_send + fresh.invalid + fresh.refused


def finish_sending(work: Work) -> None:
    """The rows sent are stored as they are checkpointed: until the last is, a resumed run plans
    the rest again from the kept snapshot (dropped when the run ends)."""
    if work.sending is not None:
        work.sending.join()
        with work.ctx.runtime.sessions() as session, session.begin():
            bulk.analyze(session, stored(work))


def _has_rows_to_send(ctx: Context) -> bool:
    with ctx.runtime.readers() as session:
        return bool(
            session.scalar(
                sa.text("SELECT 1 FROM run_members WHERE run_id = :run AND outcome IS NULL LIMIT 1"),
                {"run": ctx.run.id},
            )
        )


def _count_batches(ctx: Context, limits: Limits, pending: dict[Any, int] | None = None) -> None:
    """Batches still to send (an estimate where a byte limit may split batches further), from
    ``pending`` rows by action, or else from the stored plan."""
    with ctx.runtime.sessions() as session, session.begin():
        if pending is None:
            pending = dict(
                session.execute(
                    sa.text(
                        "SELECT action, count(*) FROM run_members WHERE run_id = :run AND outcome IS NULL "
                        "GROUP BY action"
                    ),
                    {"run": ctx.run.id},
                ).all()
            )
        upserts = pending.get(MemberAction.NEW, 0) + pending.get(MemberAction.UPDATE, 0)
        remaining = -(-upserts // limits.max_batch_rows) + -(
            -pending.get(MemberAction.REMOVE, 0) // REMOVE_BATCH
        )
        done = session.scalar(sa.select(Run.batches_done).where(Run.id == ctx.run.id)) or 0
        ctx.update(session, batches_total=done + remaining)
