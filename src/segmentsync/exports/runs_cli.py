"""`segmentsync runs …`: list, show, rows (search, CSV), cancel, confirm."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from segmentsync.auth.models import User
from segmentsync.exports import run_rows, runs, service, views
from segmentsync.exports.models import Outcome, Run
from segmentsync.exports.schemas import RunOut
from segmentsync.exports.terminal import (
    in_transaction,
    print_json,
    reading,
    runs_table,
    show_run,
)
from segmentsync.terminal import AsUser, Json, open_runtime, out

app = typer.Typer(no_args_is_help=True, help="Runs: one execution of an export each.")

RunId = Annotated[int, typer.Argument(help="the run's id")]


@app.command("list")
def list_runs(
    export: Annotated[
        str | None, typer.Option("--export", "-e", help="only this export (name or id)")
    ] = None,
    status: Annotated[str | None, typer.Option("--status", help="status(es), comma-separated")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500)] = 20,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Runs, newest first."""
    with open_runtime() as runtime:

        def work(session: Session, user: User) -> list[RunOut]:
            export_id = service.find(session=session, key=export, actor=user).id if export else None
            query = views.run_query(actor=user, export_id=export_id, status=status).limit(limit)
            return views.run_outs(session, list(session.scalars(query)), now=runtime.clock())

        found = reading(runtime, as_user, work)
        if as_json:
            print_json([run.model_dump(mode="json") for run in found])
        else:
            out.print(runs_table(found))


@app.command()
def show(run_id: RunId, as_user: AsUser = None, as_json: Json = False) -> None:
    """One run: status, counts, progress, error (and a dry run's plan with samples)."""
    with open_runtime() as runtime:

        def work(session: Session, user: User) -> RunOut:
            found = list(session.scalars(views.run_query(actor=user).where(Run.id == run_id)))
            if not found:
                runs.get_run(session, run_id)  # NotFound
            return views.run_outs(session, found, now=runtime.clock())[0]

        run = reading(runtime, as_user, work)
        if as_json:
            print_json(run)
            return
        show_run(run)
        progress = run.progress
        if progress.batches_total:
            rate = f", {progress.rows_per_second:,.0f} rows/s" if progress.rows_per_second else ""
            eta = f", ETA {progress.eta_seconds:,.0f} s" if progress.eta_seconds is not None else ""
            out.print(
                f"batches {progress.batches_done:,}/{progress.batches_total:,}{rate}{eta}", highlight=False
            )


@app.command()
def rows(
    run_id: RunId,
    email: Annotated[str | None, typer.Option("--email", help="part of an email address")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="an outcome, or pending")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    to_csv: Annotated[
        bool, typer.Option("--csv", help="every matching row as CSV on standard output")
    ] = False,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """The run's per-row outcomes: search by email, filter by outcome, or all as CSV."""
    if outcome is not None and outcome != "pending" and outcome not in {o.value for o in Outcome}:
        raise typer.BadParameter(
            f"choose one of {', '.join(o.value for o in Outcome)} or pending", param_hint="--outcome"
        )
    with open_runtime() as runtime:
        if to_csv:
            reading(runtime, as_user, lambda session, user: _check_run(session, user, run_id))
            for chunk in views.csv_chunks(runtime, run_id, email=email, outcome=outcome):
                sys.stdout.write(chunk)
            return

        def work(session: Session, user: User) -> list[run_rows.Row]:
            _check_run(session, user, run_id)
            found, _total = runs.rows_page(
                session, run_id, email=email, outcome=outcome, limit=limit, offset=offset
            )
            return found

        found = reading(runtime, as_user, work)
        if as_json:
            print_json([_row_json(member) for member in found])
            return
        table = Table("#", "email", "profile", "action", "outcome", "code", "message")
        for member in found:
            table.add_row(
                str(member.seq), member.email, member.profile_key or "", member.action.value,
                member.outcome.value if member.outcome else "pending", member.code or "", member.message or "",
            )  # fmt: skip
        out.print(table)


def _row_json(member: run_rows.Row) -> dict[str, Any]:
    return {
        "seq": member.seq, "email": member.email, "profile_key": member.profile_key,
        "action": member.action.value, "outcome": member.outcome.value if member.outcome else "pending",
        "code": member.code, "message": member.message,
    }  # fmt: skip


def _check_run(session: Session, user: User, run_id: int) -> None:
    views.run_query(actor=user)  # the policy: runs.view
    runs.get_run(session, run_id)  # NotFound


def _change(as_user: str | None, run_id: int, action: Any) -> RunOut:
    with open_runtime() as runtime:

        def work(session: Session, user: User) -> RunOut:
            action(session=session, run_id=run_id, actor=user)
            session.flush()
            return views.run_outs(session, [runs.get_run(session, run_id)], now=runtime.clock())[0]

        return in_transaction(runtime, as_user, work)


@app.command()
def cancel(run_id: RunId, as_user: AsUser = None, as_json: Json = False) -> None:
    """Cancel a run: a queued one ends now, a running one after its batches in flight."""
    run = _change(as_user, run_id, runs.cancel_run)
    if as_json:
        print_json(run)
        return
    note = (
        "cancelling: no new batch is sent; it ends cancelled once its batches in flight are back "
        "(an import the platform accepted cannot be taken back)"
        if run.cancel_requested
        else run.status.value
    )
    out.print(f"run #{run.id}: {note}", highlight=False)


@app.command()
def confirm(run_id: RunId, as_user: AsUser = None, as_json: Json = False) -> None:
    """Let a run stopped by the mirror guard go ahead with its removals."""
    run = _change(as_user, run_id, runs.confirm_removals)
    if as_json:
        print_json(run)
        return
    out.print(f"run #{run.id} is queued again with its removals confirmed", highlight=False)
