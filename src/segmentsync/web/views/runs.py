"""Run detail: live progress, counts, per-row outcomes (search, CSV), cancel, confirm removals."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.orm import Session

from segmentsync.api.pagination import PageParams
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action
from segmentsync.connections.models import Connection
from segmentsync.errors import SegmentSyncError
from segmentsync.exports import runs, views
from segmentsync.exports.grants import permission
from segmentsync.exports.models import ACTIVE_STATUSES, Export, Outcome, Run, RunPhase, RunStatus
from segmentsync.web import charts
from segmentsync.web.messages import capitalised, localise_text
from segmentsync.web.page import Page, PostedForm, page_for
from segmentsync.web.routing import web_router

router = web_router()
Viewer = Annotated[Page, page_for(Action.RUNS_VIEW)]
Changer = Annotated[Page, page_for(Action.RUNS_CANCEL)]
ROWS_PER_PAGE = 50
COUNTS = ("profiles", "new", "updated", "unchanged", "removed", "invalid", "rejected", "skipped")


def _can_change(session: Session, page: Page, run: Run) -> bool:
    if not page.can(Action.RUNS_CANCEL):
        return False
    export = session.get(Export, run.export_id) if run.export_id else None
    connection = session.get(Connection, export.connection_id) if export and export.connection_id else None
    return export is not None and permission(page.me, connection) == "edit"


PHASES = ("queued", *(phase.value for phase in RunPhase))
STOPPED = (RunStatus.FAILED, RunStatus.CANCELLED)


def phases(page: Page, run: Run) -> list[dict[str, str]]:
    """Queued · Snapshot · Plan · Send · Finish, each done, current or to come (a fast run shows
    them all done; a dry run skips Send)."""
    if run.status is RunStatus.QUEUED or (run.status is RunStatus.FAILED_RETRY and run.phase is None):
        current = 0
    elif run.status is RunStatus.AWAITING_CONFIRMATION:
        current = PHASES.index("send")  # the plan is made; sending waits for the confirmation
    elif run.status in ACTIVE_STATUSES or (run.status in STOPPED and run.phase):
        current = PHASES.index(run.phase.value) if run.phase else 1
    else:
        current = len(PHASES)
    found = []
    for index, name in enumerate(PHASES):
        state = "done" if index < current else "current" if index == current else "todo"
        if run.dry_run and name == "send" and state == "done":
            state = "skipped"
        if index == current and run.status in (RunStatus.FAILED_RETRY, RunStatus.AWAITING_CONFIRMATION):
            state = "waiting"
        if index == current and run.status in STOPPED:
            state = "stopped"  # where a failed or cancelled run ended
        text = page.label("run_status", "queued") if name == "queued" else page.label("phase", name)
        found.append({"name": name, "label": text, "state": state})
    return found


def rows_note(page: Page, run: Run, progress: dict[str, Any]) -> str:
    """What the rows panel says while no row is recorded yet: what is happening."""
    if run.status is RunStatus.QUEUED:
        return page._("Waiting for a worker to start the run.")
    if run.status is RunStatus.FAILED_RETRY:
        return page._("The run failed for now and will try again.")
    if run.status not in ACTIVE_STATUSES:
        return page._("This run recorded no rows.")
    if run.phase in (None, RunPhase.SNAPSHOT):
        return page._("Taking a snapshot of the segments' members…")
    if run.phase is RunPhase.PLAN:
        return page._("Comparing the members with what the list already holds…")
    if run.phase is RunPhase.SEND:
        return page._(
            "Sending %(rows)s rows to the platform. Their outcomes are listed here when the run has finished; "
            "the counts above follow the platform as it acknowledges each batch.",
            rows=page.number(progress["rows_to_send"]),
        )
    return page._("Finishing the run…")


def live(page: Page, run: Run) -> dict[str, Any]:
    """What the page's script shows without reloading: status, phase, progress, counts."""
    progress = runs.progress(run, page.runtime.clock())
    cancelling = runs.cancelling(run)
    steps = phases(page, run)
    # Before the run names its phase (queued, or just started), the step the list shows as current.
    current = next((step["label"] for step in steps if step["state"] in ("current", "waiting")), "—")
    return {
        "phases": steps,
        "rowsNote": rows_note(page, run, progress),
        "status": run.status.value,
        "statusLabel": page._("Cancelling…") if cancelling else page.label("run_status", run.status),
        "cancelling": cancelling,
        "phase": progress["phase"],
        "phaseLabel": page.label("phase", run.phase) if run.phase else current,
        "active": run.status in ACTIVE_STATUSES,
        "percent": progress["percent"],
        "batches": f"{page.number(progress['batches_done'])} / {page.number(progress['batches_total'])}",
        "rows": f"{page.number(progress['rows_sent'])} / {page.number(progress['rows_to_send'])}",
        "rate": page.number(round(progress["rows_per_second"])) if progress["rows_per_second"] else "—",
        "eta": page.duration(progress["eta_seconds"]),
        "counts": {name: page.number(getattr(run, name)) for name in COUNTS},
        "error": capitalised(localise_text(page.tr, run.error)) if run.error else None,
    }


@router.get("/runs/{run_id}")
def run_page(run_id: int, page: Viewer, email: str = "", outcome: str = "", offset: int = 0) -> Response:
    params = PageParams(limit=ROWS_PER_PAGE, offset=max(offset, 0))
    with page.transaction() as session:
        run = runs.get_run(session, run_id)
        rows, total = runs.rows_page(
            session,
            run_id,
            email=email or None,
            outcome=outcome or None,
            limit=params.limit,
            offset=params.offset,
        )
        can_change = _can_change(session, page, run)
        triggered_by = session.get(User, run.triggered_by_id) if run.triggered_by_id else None
    filters = {k: v for k, v in {"email": email, "outcome": outcome}.items() if v}
    return page.render(
        "run.html", title=page._("Run #%(id)s", id=run.id), run=run, live=live(page, run), rows=rows, total=total,
        offset=params.offset, limit=ROWS_PER_PAGE, email=email, outcome=outcome, outcomes=[*Outcome, "pending"],
        can_change=can_change, triggered_by=triggered_by, base=f"/runs/{run_id}?{urlencode(filters)}&",
        csv_url=f"/runs/{run_id}/rows.csv?{urlencode(filters)}", awaiting=run.status is RunStatus.AWAITING_CONFIRMATION,
        outcome_chart=charts.run_outcomes(run, page.tr),
    )  # fmt: skip


@router.get("/runs/{run_id}/live")
def run_live(run_id: int, page: Viewer) -> JSONResponse:
    with page.transaction() as session:
        run = runs.get_run(session, run_id)
    return JSONResponse(live(page, run), headers={"Cache-Control": "no-store"})


@router.get("/runs/{run_id}/rows.csv")
def run_csv(run_id: int, page: Viewer, email: str = "", outcome: str = "") -> StreamingResponse:
    with page.transaction() as session:
        runs.get_run(session, run_id)  # NotFound before the download starts
    chunks = views.csv_chunks(page.runtime, run_id, email=email or None, outcome=outcome or None)
    headers = {"Content-Disposition": f'attachment; filename="run-{run_id}-rows.csv"'}
    return StreamingResponse(chunks, media_type="text/csv; charset=utf-8", headers=headers)


@router.post("/runs/{run_id}/cancel")
def cancel(run_id: int, page: Changer, form: PostedForm) -> Response:
    try:
        with page.transaction() as session:
            runs.cancel_run(session=session, run_id=run_id, actor=page.me)
    except SegmentSyncError as error:
        page.flash(page.error_text(error), "error")
    else:
        page.flash(page._("Cancelling: the batches in flight finish first."))
    return page.redirect(form.get("next") if form.get("next").startswith("/exports") else f"/runs/{run_id}")


@router.post("/runs/{run_id}/confirm-removals")
def confirm_removals(run_id: int, page: Changer, form: PostedForm) -> Response:
    try:
        with page.transaction() as session:
            runs.confirm_removals(session=session, run_id=run_id, actor=page.me)
    except SegmentSyncError as error:
        page.flash(page.error_text(error), "error")
    else:
        page.flash(page._("Confirmed: the run goes on and removes the members who left."))
    return page.redirect(f"/runs/{run_id}")
