"""What `segmentsync exports …` and `segmentsync runs …` share: run tables, and `--wait` (a run
executed in this process with a progress bar). The plumbing of every command is in `terminal.py`.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn
from rich.table import Table
from sqlalchemy.orm import Session

from segmentsync import terminal
from segmentsync.auth.models import User
from segmentsync.db import transaction
from segmentsync.engine.run import execute
from segmentsync.exports import runs, service, views
from segmentsync.exports.models import RunStatus, SyncMode
from segmentsync.exports.schemas import ExportOut, RunOut
from segmentsync.runtime import Runtime
from segmentsync.scheduling.worker import Worker, worker_name
from segmentsync.terminal import (
    EXIT_AWAITING_CONFIRMATION,
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REJECTIONS,
    actor,
    err,
    out,
)

T = TypeVar("T")

# Exit codes of `exports run --wait` (0 only when the run succeeded); the table is in terminal.py.
EXIT_CODES = {
    RunStatus.SUCCEEDED: EXIT_OK,
    RunStatus.SUCCEEDED_WITH_REJECTIONS: EXIT_REJECTIONS,  # sent, but the platform refused some rows
    RunStatus.AWAITING_CONFIRMATION: EXIT_AWAITING_CONFIRMATION,  # confirm with `runs confirm`
    RunStatus.FAILED: EXIT_FAILED,
    RunStatus.FAILED_RETRY: EXIT_FAILED,  # failed for now; a worker retries it later
    RunStatus.SKIPPED: EXIT_FAILED,  # a dependency failed (segment refresh, connection)
    RunStatus.CANCELLED: EXIT_CANCELLED,
}
POLL_SECONDS = 0.5
WAITING = (RunStatus.QUEUED, RunStatus.RUNNING)


def in_transaction(runtime: Runtime, as_user: str | None, work: Callable[[Session, User], T]) -> T:
    with transaction(runtime.sessions) as session:
        return work(session, actor(session, as_user))


def reading(runtime: Runtime, as_user: str | None, work: Callable[[Session, User], T]) -> T:
    """``work`` in a read-only session (on SQLite it never waits for a worker's writes)."""
    with runtime.readers() as session:
        return work(session, actor(session, as_user))


def print_json(value: BaseModel | list[Any] | dict[str, Any]) -> None:
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    terminal.print_json(data)


# ---------------------------------------------------------------- exports


def print_export(export: ExportOut) -> None:
    table = Table(show_header=False, title=f"Export “{export.name}” (#{export.id})")
    connection = (
        f"{export.connection.name} ({export.connection.status.value})"
        if export.connection
        else "No connection"
    )
    table.add_row("connection", connection)
    table.add_row("type", export.type.value)
    table.add_row("list", f"{export.list_name} ({export.list_id})")
    table.add_row("email", export.email_column)
    table.add_row("attributes", ", ".join(f"{a.column} → {a.target}" for a in export.attributes) or "—")
    consent_text = (
        f"column {export.consent_column}" if export.consent_to_track == "column" else export.consent_to_track
    )
    table.add_row("consent to track", consent_text)
    table.add_row(
        "segments",
        ", ".join(
            f"{s.name} ({s.member_count if s.member_count is not None else '?'})" for s in export.segments
        ),
    )
    table.add_row(
        "sync mode",
        export.sync_mode.value
        + (f", removal: {export.removal_mode.value}" if export.sync_mode is SyncMode.MIRROR else ""),
    )
    table.add_row("resubscribe", "yes" if export.resubscribe else "no")
    table.add_row(
        "schedule",
        export.schedule + (f"; next {export.next_run_at:%Y-%m-%d %H:%M} UTC" if export.next_run_at else ""),
    )
    table.add_row("status", export.status)
    table.add_row("your permission", export.permission)
    if export.last_run:
        table.add_row(
            "last run",
            f"#{export.last_run.id} {export.last_run.status.value} ({export.last_run.created_at:%Y-%m-%d %H:%M})",
        )
    if export.members is not None:
        table.add_row("members now", f"{export.members:,}")
    out.print(table)
    for warning in export.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


def show_saved(runtime: Runtime, saved: service.Saved, user: User, as_json: bool) -> None:
    with runtime.readers() as session:
        export = service.get(session=session, export_id=saved.export_id, actor=user)
        view = views.export_out(
            session, export, user, now=runtime.clock(), members=saved.members, warnings=saved.warnings
        )
    if as_json:
        print_json(view)
    else:
        print_export(view)


# ---------------------------------------------------------------- runs as tables


def runs_table(items: list[RunOut]) -> Table:
    table = Table(
        "run", "export", "status", "trigger", "created", "duration", "new", "updated", "removed", "rejected"
    )
    for run in items:
        kind = run.trigger.value.replace("_", " ") + (" (dry run)" if run.dry_run else "")
        table.add_row(
            str(run.id), run.export_name, run.status.value, kind, f"{run.created_at:%Y-%m-%d %H:%M:%S}",
            f"{run.duration_seconds:.1f} s" if run.duration_seconds is not None else "",
            *(f"{getattr(run.counts, name):,}" for name in ("new", "updated", "removed", "rejected")),
        )  # fmt: skip
    return table


def counts_table(run: RunOut) -> Table:
    table = Table("", "profiles", title=f"Run #{run.id} of “{run.export_name}”: {run.status.value}")
    for name, value in run.counts.model_dump().items():
        table.add_row(name, f"{value:,}")
    if run.dry_run and run.plan:
        for name in ("new", "update", "unchanged", "remove", "invalid"):
            table.add_row(f"would {name}" if name != "invalid" else "invalid", f"{run.plan.get(name, 0):,}")
    return table


def show_run(run: RunOut) -> None:
    out.print(counts_table(run))
    if run.duration_seconds is not None:
        out.print(f"duration {run.duration_seconds:.1f} s", highlight=False)
    if run.error:
        style = "yellow" if run.status in (RunStatus.AWAITING_CONFIRMATION, RunStatus.FAILED_RETRY) else "red"
        out.print(f"[{style}]{run.error}[/{style}]", highlight=False)
    if run.dry_run and run.plan and run.plan.get("samples"):
        for kind, sample in run.plan["samples"].items():
            emails = ", ".join(str(item.get("email", item)) for item in sample)
            out.print(f"sample {kind}: {emails}", highlight=False)


def load_run(runtime: Runtime, run_id: int) -> RunOut:
    with runtime.readers() as session:
        run = runs.get_run(session, run_id)
        return views.run_outs(session, [run], now=runtime.clock())[0]


# ---------------------------------------------------------------- --wait


def _execute(worker: Worker, run_id: int, stop: threading.Event) -> None:
    """What ``Worker.run_once`` does after claiming: heartbeats while the run executes."""
    beat = threading.Thread(
        target=worker._heartbeat, args=(run_id, stop, None), daemon=True
    )  # the worker's own
    beat.start()
    try:
        execute(worker.runtime, run_id, lease_owner=worker.name, stop=stop)
    finally:
        stop.set()
        beat.join()


def _progress_bar(console: Any) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[batches]}"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[eta]}"),
        console=console,
        transient=False,
    )


def _update(bar: Progress, task: Any, run: RunOut) -> None:
    progress = run.progress
    done = run.status not in WAITING
    phase = run.status.value if done or not progress.phase else progress.phase.value
    bar.update(
        task,
        description=f"#{run.id} {phase}",
        total=progress.rows_to_send or None,
        completed=progress.rows_sent,
        batches=f"batch {progress.batches_done:,}/{progress.batches_total:,}"
        if progress.batches_total
        else "",
        rate=f"{progress.rows_per_second:,.0f} rows/s" if progress.rows_per_second else "",
        eta=f"ETA {progress.eta_seconds:,.0f} s" if progress.eta_seconds is not None else "",
    )


def wait_for_run(runtime: Runtime, run_id: int, *, as_json: bool = False) -> int:
    """Execute the run here unless another worker has it; show progress; return the exit code.

    With ``as_json`` the progress goes to standard error and the finished run is printed as JSON.
    """
    worker = Worker(runtime, name=f"cli:{worker_name()}")
    stop = threading.Event()
    thread: threading.Thread | None = None
    try:
        with _progress_bar(err if as_json else out) as bar:
            task = bar.add_task("queued", total=None, batches="", rate="", eta="")
            for poll in itertools.count():
                run = load_run(runtime, run_id)
                # Queued: take it. Running elsewhere: take it over only if that worker's lease ran out.
                claimable = run.status is RunStatus.QUEUED or (
                    run.status is RunStatus.RUNNING and poll % 20 == 19
                )
                if thread is None and claimable and worker.claim(run_id) is not None:
                    thread = threading.Thread(target=_execute, args=(worker, run_id, stop), daemon=True)
                    thread.start()
                _update(bar, task, run)
                if run.status not in WAITING and (thread is None or not thread.is_alive()):
                    break
                if thread is not None:
                    thread.join(POLL_SECONDS)  # back at once when the run ends here
                else:
                    time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        stop.set()
        if thread is not None:
            err.print("stopping after the batches in flight …")
            thread.join()
        err.print(f"interrupted: run #{run_id} resumes where it stopped when a worker picks it up")
        return EXIT_INTERRUPTED
    final = load_run(runtime, run_id)
    if as_json:
        print_json(final)
    else:
        show_run(final)
    if final.status is RunStatus.FAILED_RETRY and final.next_attempt_at:
        err.print(f"a worker will retry it at {final.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC")
    return EXIT_CODES.get(final.status, 1)
