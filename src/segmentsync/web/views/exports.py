"""Data > Exports: the list (search, sort), one export, and the actions on exports.

Actions: Run, Dry run, Cancel (the active run), Duplicate, Detach connection, Remove, Run all.
The *Add export* form and editing are in :mod:`segmentsync.web.views.export_form`.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Response

from segmentsync.api.pagination import PageParams, paginate
from segmentsync.auth.policy import Action
from segmentsync.errors import SegmentSyncError
from segmentsync.exports import service, views
from segmentsync.scheduling import schedule
from segmentsync.web import charts, messages
from segmentsync.web.i18n import N_
from segmentsync.web.page import Page, PostedForm, page_for
from segmentsync.web.routing import web_router
from segmentsync.web.views import export_form
from segmentsync.web.views.webhooks import alerts_view

router = web_router()
router.include_router(export_form.router)  # /exports/new before /exports/{id}
Viewer = Annotated[Page, page_for(Action.EXPORTS_VIEW)]
Editor = Annotated[Page, page_for(Action.EXPORTS_EDIT)]
Runner = Annotated[Page, page_for(Action.EXPORTS_RUN)]
PER_PAGE = 50
RUNS_SHOWN = 20
COLUMNS = (  # (sort key or None, heading) of Data > Exports, as in the original product
    ("name", N_("Name")), ("connection", N_("Connection")), ("type", N_("Type")), (None, N_("Status")),
    (None, N_("Your permission")), ("schedule", N_("Schedule")), ("last_run", N_("Last run")),
)  # fmt: skip


@router.get("/exports")
def exports(page: Viewer, q: str = "", sort: str = "name", offset: int = 0) -> Response:
    params = PageParams(limit=PER_PAGE, offset=max(offset, 0))
    if sort.removeprefix("-") not in views.SORTS:
        sort = "name"
    with page.transaction() as session:
        found, total = paginate(
            session, views.export_query(actor=page.me, search=q or None, sort=sort), params
        )
        rows = views.export_rows(session, found, page.me)
        any_export = total > 0 or bool(q)
    active = {row.id: row.status in ("queued", "running", "failed_retry") for row in rows}
    return page.render(
        "exports.html", title=page._("Exports"), rows=rows, total=total, offset=params.offset, limit=PER_PAGE,
        q=q, sort=sort, columns=COLUMNS, any_export=any_export, active=active,
        base="/exports?" + urlencode({k: v for k, v in {"q": q, "sort": sort}.items() if v}) + "&",
    )  # fmt: skip


@router.post("/exports/run-all")
def run_all(page: Runner, form: PostedForm) -> Response:
    with page.transaction() as session:
        queued, skipped = service.run_all(session=session, actor=page.me, ip=page.ip)
    page.flash(page._("Run all: %(queued)s runs queued.", queued=len(queued)))
    for item in skipped:
        reason = messages.localise_text(page.tr, str(item["reason"]))
        page.flash(f"{item['name']}: {reason}", "warn")
    return page.redirect("/exports")


@router.get("/exports/{export_id}")
def export_page(export_id: int, page: Viewer) -> Response:
    with page.transaction() as session:
        export = service.get(session=session, export_id=export_id, actor=page.me)
        out = views.export_out(session, export, page.me, now=page.runtime.clock())
        history, _ = paginate(
            session, views.run_query(actor=page.me, export_id=export_id), PageParams(limit=RUNS_SHOWN)
        )
        chart = charts.export_runs(session, export_id, now=page.runtime.clock(), tr=page.tr)
        system_zone = schedule.load(session).timezone or "UTC"  # the zone a system refresh is set in
        alert_rules = alerts_view(session, export_id)  # the alert rules block (_export_alerts.html)
    return page.render(
        "export.html", title=out.name, export=out, runs=history, charts=chart, alerts=alert_rules,
        runs_charted=charts.RUNS_CHARTED, days_charted=charts.DAYS_CHARTED, system_zone=system_zone,
        can_edit=out.permission == "edit" and page.can(Action.EXPORTS_EDIT),
    )  # fmt: skip


def _back(form_next: str, export_id: int) -> str:
    return "/exports" if form_next == "/exports" else f"/exports/{export_id}"


@router.post("/exports/{export_id}/run")
def run(export_id: int, page: Runner, form: PostedForm) -> Response:
    try:
        with page.transaction() as session:
            export = service.get(session=session, export_id=export_id, actor=page.me)
            started = service.run(
                session=session, export=export, actor=page.me, dry_run=form.bool("dry_run"),
                full_resync=form.bool("full_resync"),
            )  # fmt: skip
            run_id = started.id
    except SegmentSyncError as error:
        page.flash(page.error_text(error), "error")
        return page.redirect(_back(form.get("next"), export_id))
    return page.redirect(f"/runs/{run_id}")


@router.post("/exports/{export_id}/duplicate")
def duplicate(export_id: int, page: Editor, form: PostedForm) -> Response:
    """*Duplicate* opens the form filled in as a copy; nothing exists before *Save*."""
    return page.redirect(f"/exports/new?copy_of={export_id}")


@router.post("/exports/{export_id}/detach")
def detach(export_id: int, page: Editor, form: PostedForm) -> Response:
    try:
        with page.transaction() as session:
            export = service.get(session=session, export_id=export_id, actor=page.me)
            service.detach(session=session, export=export, actor=page.me, ip=page.ip)
    except SegmentSyncError as error:
        page.flash(page.error_text(error), "error")
    else:
        page.flash(page._("The connection is detached. The export is kept, inactive, until you attach one."))
    return page.redirect(_back(form.get("next"), export_id))


@router.post("/exports/{export_id}/remove")
def remove(export_id: int, page: Editor, form: PostedForm) -> Response:
    try:
        with page.transaction() as session:
            export = service.get(session=session, export_id=export_id, actor=page.me)
            name = export.name
            service.remove(session=session, export=export, actor=page.me, ip=page.ip)
    except SegmentSyncError as error:
        page.flash(page.error_text(error), "error")
        return page.redirect(_back(form.get("next"), export_id))
    page.flash(page._("The export %(name)s is removed; its run history is kept.", name=name))
    return page.redirect("/exports")
