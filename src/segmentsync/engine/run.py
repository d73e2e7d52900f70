"""Execute one run: snapshot → plan → send → finish (SPEC §5, DESIGN "The way a run flows").

``execute`` is called by a worker that holds the run's lease. Every phase change and every
acknowledged batch is committed, so a run interrupted at any point resumes from its last
checkpoint. Sending (phase *send*) starts while the plan is still being stored; until it is stored
in full the run keeps its snapshot, and a run interrupted then keeps the rows it sent and plans the
rest again from that snapshot (the members it sent are left out of the new plan); once the whole
plan is stored a resumed run reuses it and sends only the rows without an outcome.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import duckdb
import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.connections.access import is_auth_failure
from segmentsync.connections.models import Connection
from segmentsync.destinations.base import Destination, Limits
from segmentsync.engine import plan as planner
from segmentsync.engine import send as sender
from segmentsync.engine import snapshot
from segmentsync.errors import ConfigError, Fatal, Invalid, QuotaExceeded, Retriable, SegmentSyncError
from segmentsync.exports import notify
from segmentsync.exports.models import Export, ExportSegment, Run, RunPhase, RunStatus, RunUnchanged
from segmentsync.profiles.source import ProfileSource
from segmentsync.runtime import Runtime
from segmentsync.segments.models import Segment

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRY_DELAYS = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(minutes=30))
STREAM_BATCH_ROWS = 50_000

DestinationFactory = Callable[[Runtime, Connection], Destination]


@dataclass
class Context:
    runtime: Runtime
    run: Run
    export: Export
    connection: Connection
    lease_owner: str
    stop: threading.Event


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
    factory = destination_factory or _default_destination
    try:
        ctx = _prepare(runtime, run_id, lease_owner, stop)
        return _phases(ctx, factory)
    except sender.LeaseLost:
        log.info("run %s: lease lost or worker stopping; another worker will resume it", run_id)
        return None
    except sender.Cancelled:
        return _end(runtime, run_id, lease_owner, RunStatus.CANCELLED, None, "cancelled by a user")
    except SegmentSyncError as exc:
        return _failed(runtime, run_id, lease_owner, exc)
    except Exception as exc:  # a bug or an unexpected outage: retried, then reported
        log.exception("run %s: unexpected error", run_id)
        return _failed(
            runtime, run_id, lease_owner, Retriable(f"unexpected error: {exc.__class__.__name__}: {exc}")
        )


def warm_up(runtime: Runtime) -> None:
    """Import what a run otherwise imports on first use — the profile source's Ibis backend (with
    its SQL compilers), Arrow, the HTTP transport — for a long-lived worker, before it waits for runs."""
    import httpcore  # noqa: F401  # the platforms' HTTP clients use it
    import pyarrow  # noqa: F401  # the plan's rows come out through Arrow

    runtime.profiles.warm()


def _default_destination(runtime: Runtime, connection: Connection) -> Destination:
    from segmentsync.connections.destination import destination_for

    return destination_for(runtime=runtime, connection=connection)


def _prepare(runtime: Runtime, run_id: int, lease_owner: str, stop: threading.Event) -> Context:
    with runtime.sessions() as session:
        run = session.get(Run, run_id)
        if run is None or run.lease_owner != lease_owner or run.status is not RunStatus.RUNNING:
            raise sender.LeaseLost(f"run {run_id} is not running under {lease_owner}")
        export = session.get(Export, run.export_id) if run.export_id is not None else None
        if export is None:
            raise Fatal("the export of this run was removed", code="export_removed")
        if export.connection_id is None:
            raise ConfigError(
                "No connection: this export was detached from its connection; attach one to run it",
                code="no_connection",
            )
        connection = session.get(Connection, export.connection_id)
        if connection is None:
            raise ConfigError("No connection", code="no_connection")
        _check_export_user(session, connection)
        session.expunge_all()
    return Context(runtime, run, export, connection, lease_owner, stop)


def _check_export_user(session: Session, connection: Connection) -> None:
    from segmentsync.auth.models import User
    from segmentsync.auth.service import export_user_problem

    user = session.get(User, connection.export_user_id) if connection.export_user_id else None
    problem = "this connection has no export user" if user is None else export_user_problem(user)
    if problem:
        raise ConfigError(
            f"{problem}. An admin must open the connection “{connection.name}” and add themselves as export user.",
            code="export_user",
        )


class LazyDestination:
    """The run's destination, opened when first needed: a run with nothing to send never calls
    the platform."""

    def __init__(self, ctx: Context, factory: DestinationFactory) -> None:
        self._ctx, self._factory = ctx, factory
        self._opened: Destination | None = None

    def get(self) -> Destination:
        if self._opened is None:
            self._opened = self._factory(self._ctx.runtime, self._ctx.connection)
        return self._opened

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close()


def _phases(ctx: Context, factory: DestinationFactory) -> RunStatus | None:
    run = ctx.run
    destination = LazyDestination(ctx, factory)
    try:
        with ctx.runtime.readers() as session:
            kept = snapshot.kept(session, run.id)  # the run sent while its plan was not stored in full
        if run.phase in (None, RunPhase.SNAPSHOT, RunPhase.PLAN) or (kept and run.phase is RunPhase.SEND):
            plan, sent = _snapshot_and_plan(ctx, destination, restore=kept)
            if sent:
                return _finish(ctx)
            if run.dry_run:
                return _end(ctx.runtime, run.id, ctx.lease_owner, RunStatus.SUCCEEDED, None, None)
            if not _may_send(run, plan):  # the mirror guard
                message = (
                    f"This run would remove {plan.remove:,} of the {plan.delivered_before:,} members it "
                    "delivered (more than half). Nothing was sent. Confirm to go ahead, or check the "
                    "segments and source."
                )
                return _end(
                    ctx.runtime,
                    run.id,
                    ctx.lease_owner,
                    RunStatus.AWAITING_CONFIRMATION,
                    "mirror_guard",
                    message,
                )
        _set_phase(ctx, RunPhase.SEND)
        if _has_rows_to_send(ctx):
            _send(ctx, destination.get())
    finally:
        destination.close()
    return _finish(ctx)


def _has_rows_to_send(ctx: Context) -> bool:
    with ctx.runtime.readers() as session:
        return bool(
            session.scalar(
                sa.text("SELECT 1 FROM run_members WHERE run_id = :run AND outcome IS NULL LIMIT 1"),
                {"run": ctx.run.id},
            )
        )


def _job(ctx: Context, destination: Destination, **more: Any) -> sender.SendJob:
    return sender.SendJob(
        sessions=ctx.runtime.sessions,
        run_id=ctx.run.id,
        export_id=ctx.export.id,
        list_id=ctx.export.list_id,
        lease_owner=ctx.lease_owner,
        destination=destination,
        resubscribe=ctx.export.resubscribe,
        removal_mode=ctx.export.removal_mode.value,
        stop=ctx.stop,
        max_batch_rows=ctx.runtime.settings.max_batch_rows,
        **more,
    )


def _send(ctx: Context, destination: Destination) -> None:
    job = _job(ctx, destination)
    _count_batches(ctx, job.limits())
    sender.send(job)


class SendWhilePlanning:
    """Sends the plan's rows from a thread of its own while the runner still reads the plan out.

    The runner hands over each chunk (:meth:`hand`), stores only what it did not hand over and,
    after the last, calls :meth:`close`; :meth:`join` waits for the sender and raises what
    stopped it. The sender stores the rows it sends, with their outcomes, as it checkpoints them.
    Both write to the metadata store; on SQLite they take turns through one lock instead of
    waiting in SQLite's busy loop.
    """

    def __init__(self, ctx: Context, destination: Destination, lock: Any) -> None:
        self.feed = sender.Feed()
        self.job = _job(ctx, destination, feed=self.feed, write_lock=lock)
        self.error: BaseException | None = None
        self.open = True  # rows of the plan may still come
        self._thread = threading.Thread(target=self._send, name=f"run{ctx.run.id}-send", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _send(self) -> None:
        try:
            sender.send(self.job)
        except BaseException as exc:  # handed to the runner's thread by join()
            self.error = exc

    def hand(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]] | None:
        """Hand over the rows to send of a chunk of the plan (``planner.COLUMNS`` rows); returns
        the others, for the runner to store, or None if the sender stopped. After a chunk with
        rows not to send, no later one has any (the plan's rows to send come first), and the
        feed is closed."""
        if not self.open:
            return rows
        pending: list[sender.Row] = []
        rest: list[tuple[Any, ...]] = []
        for row in rows:
            _, seq, email, key, hash_, payload, action, outcome, code, message = row
            if outcome is None and action in sender.EXPECTED:
                pending.append(sender.Row(seq, action, email, hash_, key, payload, code, message))
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


def _snapshot_and_plan(
    ctx: Context, destination: LazyDestination, *, restore: bool
) -> tuple[planner.Plan, bool]:
    """Snapshot (``restore``: the run's kept one), plan and store the plan; returns it, and
    whether its rows were sent meanwhile."""
    runtime, run, export = ctx.runtime, ctx.run, ctx.export
    _set_phase(ctx, RunPhase.SNAPSHOT)
    with runtime.sessions() as session, session.begin():
        first_seq, sent_before = planner.restart(session, run.id)
        segments = list(
            session.scalars(
                sa.select(Segment)
                .join(ExportSegment, ExportSegment.segment_id == Segment.id)
                .where(ExportSegment.export_id == export.id)
            )
        )
    if not segments:
        raise Invalid("this export has no segments", code="no_segments")
    source = runtime.profiles
    mapping = _mapping(export, source.key, ctx.connection)
    members = None  # this run sent from a kept snapshot before it stopped: plan the rest from it
    if not restore:
        mapping.check(list(source.columns()))
        rules = [_rules(segment) for segment in segments]
        members = source.members(rules, [source.key, *mapping.source_columns()])
        total = _count_and_refresh(ctx, segments, rules)
        limit = runtime.settings.export_limit
        if total > limit:
            raise Fatal(
                f"the selected segments hold {total:,} profiles; an export may send at most {limit:,}. "
                "Nothing was sent. Narrow the segments or raise SEGMENTSYNC_EXPORT_LIMIT.",
                code="limit_exceeded",
            )
    try:
        return _in_workspace(ctx, destination, source, mapping, members, first_seq, sent_before)
    except duckdb.OutOfMemoryException as exc:
        raise Fatal(
            f"the run's workspace ran out of memory ({runtime.settings.workspace_memory}): raise "
            f"SEGMENTSYNC_WORKSPACE_MEMORY or give the data dir's disk more room. DuckDB said: {exc}",
            code="workspace_memory",
        ) from exc


def _in_workspace(
    ctx: Context,
    destination: LazyDestination,
    source: ProfileSource,
    mapping: snapshot.Mapping,
    members: Any,
    first_seq: int,
    sent_before: dict[str, int],
) -> tuple[planner.Plan, bool]:
    """Snapshot (``members``: the profile source's query; None: the run's kept snapshot), plan,
    and store the plan — sending its rows meanwhile, unless it is a dry run or the mirror guard
    stops it. Returns the plan and whether its rows were sent."""
    runtime, run, export = ctx.runtime, ctx.run, ctx.export
    workspace = snapshot.Workspace(
        runtime.settings.data_dir / "work", memory_limit=runtime.settings.workspace_memory
    )
    lock = threading.Lock() if runtime.engine.dialect.name == "sqlite" else nullcontext()
    sending: SendWhilePlanning | None = None
    try:
        with workspace as ws:
            if members is None:
                with runtime.readers() as session:
                    snap = snapshot.restore(ws, session, run.id)
                if snap is None:
                    raise Retriable("the run's kept snapshot is gone", code="snapshot_gone")
            else:
                loaded = source.attachable(members) or source.stream(members, batch_rows=STREAM_BATCH_ROWS)
                snap = snapshot.build(ws, loaded, mapping)
            _set_phase(ctx, RunPhase.PLAN)
            with runtime.readers() as session:
                planner.load_delivered(ws, session, export.id)
                if sent_before:
                    planner.load_done(ws, session, run.id)

            overlap = members is None  # a kept snapshot: sent from before, and sends the rest the same way

            def keep(sending: int, removes: int, delivered: int) -> None:
                """Keep the snapshot before anything is sent, where sending while the plan is stored
                pays for keeping it: a run that sends few of its members stores their plan first."""
                nonlocal overlap
                counts = planner.Plan(remove=removes, delivered_before=delivered).with_sent(sent_before)
                if not overlap and _may_send(run, counts) and _overlaps(sending + removes, snap.profiles):
                    with runtime.sessions() as session, session.begin():
                        snapshot.save(ws, session, run.id, snap)
                    overlap = True

            fresh = planner.plan(
                ws,
                full_resync=run.full_resync,
                mirror=export.sync_mode.value == "mirror",
                template=lambda: destination.get().row_template(
                    export.list_id, snap.values, consent=snap.consent
                ),
                done=bool(sent_before),
                keep=keep,
            )
            plan = fresh.with_sent(sent_before)
            early = overlap and bool(fresh.to_send) and _may_send(run, plan)
            with runtime.sessions() as session, session.begin():
                _update_run(
                    session, ctx, profiles=snap.profiles, invalid=plan.invalid, unchanged=plan.unchanged,
                    rows_to_send=plan.to_send, plan=plan.as_dict(),
                    **({"phase": RunPhase.SEND, "send_started_at": runtime.clock()} if early else {}),
                )  # fmt: skip
            if early:
                ctx.run.phase = RunPhase.SEND
                ws.limit_memory(snapshot.SENDING_MEMORY_LIMIT)
                sending = SendWhilePlanning(ctx, destination.get(), lock)
                pending = {"new": fresh.new + fresh.update, "remove": fresh.remove}
                _count_batches(ctx, sending.job.limits(), pending)
                sending.start()
            for chunk in planner.planned_rows(ws, run.id, first_seq):
                _check_stop(ctx)
                rest = chunk if sending is None else sending.hand(chunk)
                if rest is None:
                    break  # the sender stopped: join() below says why
                if rest:
                    with lock, runtime.sessions() as session, session.begin():
                        planner.insert_members(session, rest)
            if sending is not None and sending.error is not None:
                sending.join()  # raises why it stopped; the plan is left unfinished, as it is
            if sending is not None and sending.open:
                sending.close()
            unchanged = planner.unchanged(ws, first_seq)
        with lock, runtime.sessions() as session, session.begin():
            if unchanged is not None:
                first, count, data = unchanged
                session.add(RunUnchanged(run_id=run.id, first_seq=first, count=count, data=data))
            if sending is None:
                planner.analyze(session)
        if sending is not None:
            # The rows sent are stored as they are checkpointed: until the last is, a resumed run
            # plans the rest again from the kept snapshot (dropped when the run ends).
            sending.join()
            with runtime.sessions() as session, session.begin():
                planner.analyze(session)
    except BaseException as exc:
        if sending is not None:
            sending.abort(exc)  # what is in flight is recorded first
        raise
    return plan, sending is not None


# Keeping the snapshot costs ≈ 0.7 µs per member (a million: 0.7 s); storing a row to send before
# sending it (and updating it after) ≈ 2.5-5 µs, which sending from the feed saves (its rows are
# inserted once, by their checkpoint). Below this share of the snapshot to send, the plan is
# stored first (measured when rows were still stored before sending; not measured again since).
OVERLAP_SHARE = 0.25


def _overlaps(to_send: int, members: int) -> bool:
    """Send while storing the plan (keeping the snapshot meanwhile)?"""
    return to_send > 0 and to_send >= OVERLAP_SHARE * members


def _may_send(run: Run, plan: planner.Plan) -> bool:
    """Not a dry run, and not stopped by the mirror guard (unless confirmed)."""
    return not run.dry_run and not (plan.guard_trips() and not run.confirm_removals)


def _count_batches(ctx: Context, limits: Limits, pending: dict[str, int] | None = None) -> None:
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
        upserts = pending.get("new", 0) + pending.get("update", 0)
        remaining = -(-upserts // limits.max_batch_rows) + -(-pending.get("remove", 0) // sender.REMOVE_BATCH)
        done = session.scalar(sa.select(Run.batches_done).where(Run.id == ctx.run.id)) or 0
        _update_run(session, ctx, batches_total=done + remaining)


def _mapping(export: Export, key: str, connection: Connection) -> snapshot.Mapping:
    consent: str | None = None
    if connection.type.value == "campaign_monitor":
        consent = "column" if export.consent_to_track == "column" else export.consent_to_track
    return snapshot.Mapping(
        key_column=key,
        email_column=export.email_column,
        attributes=[(item["column"], item["target"]) for item in export.attributes],
        consent=consent,
        consent_column=export.consent_column,
    )


def _rules(segment: Segment) -> Any:
    from segmentsync.segments.rules import Group

    return Group.model_validate(segment.rules)


def _count_and_refresh(ctx: Context, segments: list[Segment], rules: list[Any]) -> int:
    """The segments' union's member count; each run also refreshes its segments (their counts
    are stored with a history entry). One scan of the profiles counts them all."""
    from segmentsync.segments.rules import Group
    from segmentsync.segments.service import record_refresh

    started = time.perf_counter()
    union = [Group(op="or", items=rules)] if len(rules) > 1 else []
    counts = ctx.runtime.profiles.counts([*union, *rules])
    elapsed_ms = int((time.perf_counter() - started) * 1000)
    for segment, count in zip(segments, counts[len(union) :], strict=True):
        with ctx.runtime.sessions() as session, session.begin():
            record_refresh(
                session=session,
                source=ctx.runtime.profiles,
                segment_id=segment.id,
                counted=(count, elapsed_ms),
            )
    return counts[0]


def _finish(ctx: Context) -> RunStatus | None:
    _set_phase(ctx, RunPhase.FINISH)
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
    return _end(
        ctx.runtime,
        ctx.run.id,
        ctx.lease_owner,
        status,
        None,
        None,
        counts={name: int(counts.get(name, 0)) for name in _COUNT_COLUMNS},
    )


_COUNT_COLUMNS = ("invalid", "new", "updated", "unchanged", "removed", "rejected", "skipped")


def _check_stop(ctx: Context) -> None:
    if ctx.stop.is_set():
        raise sender.LeaseLost("the worker is stopping")


def _update_run(session: Session, ctx: Context, **values: Any) -> None:
    result = session.execute(
        sa.update(Run)
        .where(Run.id == ctx.run.id, Run.lease_owner == ctx.lease_owner, Run.status == RunStatus.RUNNING)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        raise sender.LeaseLost(f"run {ctx.run.id} is no longer leased to {ctx.lease_owner}")


def _set_phase(ctx: Context, phase: RunPhase) -> None:
    _check_stop(ctx)
    with ctx.runtime.sessions() as session, session.begin():
        values: dict[str, Any] = {"phase": phase}
        if phase is RunPhase.SEND:
            values["send_started_at"] = ctx.runtime.clock()
        _update_run(session, ctx, **values)
    ctx.run.phase = phase


def _failed(runtime: Runtime, run_id: int, lease_owner: str, exc: SegmentSyncError) -> RunStatus | None:
    """Failed (will retry) for transient errors while attempts remain, else failed (permanent)."""
    if isinstance(exc, ConfigError) and is_auth_failure(exc):
        _mark_connection(runtime, run_id, exc.message)
    with runtime.sessions() as session:
        attempt = (session.scalar(sa.select(Run.attempt).where(Run.id == run_id)) or 0) + 1
    end = partial(_end, runtime, run_id, lease_owner, attempt=attempt)
    if isinstance(exc, QuotaExceeded):
        return end(RunStatus.FAILED_RETRY, exc.code, exc.message, retry_at=exc.resets_at)
    if isinstance(exc, Retriable) and attempt < MAX_ATTEMPTS:
        delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]
        message = f"{exc.message} (attempt {attempt} of {MAX_ATTEMPTS}; will retry)"
        return end(RunStatus.FAILED_RETRY, exc.code, message, retry_at=runtime.clock() + delay)
    return end(RunStatus.FAILED, exc.code, exc.message)


def _mark_connection(runtime: Runtime, run_id: int, message: str) -> None:
    from segmentsync.connections.service import mark_needs_attention

    with runtime.sessions() as session, session.begin():
        connection_id = session.scalar(
            sa.select(Export.connection_id).join(Run, Run.export_id == Export.id).where(Run.id == run_id)
        )
        connection = session.get(Connection, connection_id) if connection_id is not None else None
        if connection is not None:
            mark_needs_attention(session=session, connection=connection, message=message)


def _end(
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
    """Leave the running state (only if we still hold the lease) and tell admins of failures."""
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
    webhook: dict[str, Any] | None = None
    with runtime.sessions() as session, session.begin():
        result = session.execute(
            sa.update(Run).where(Run.id == run_id, Run.lease_owner == lease_owner).values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
            return None
        if status is not RunStatus.FAILED_RETRY:
            snapshot.forget(session, run_id)
        if status is RunStatus.FAILED:
            webhook = notify.run_failed(session=session, run_id=run_id, message=message or "")
    if webhook is not None:
        notify.post_webhook(runtime.settings, webhook)
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
