"""The *Add export* form (the original's *Add destination*) and editing an export.

Fields, as in docs/exports-and-runs.md ("The export form"): name; connection for export (grouped by type, only the connections you
may use); list ID (typed, or picked from the lists the connection sees — the page's script asks
the API); data matching (Email ← a profile column, *Add attribute*); consent to track (Campaign
Monitor); segments with their member counts (and a warning over the export limit); sync mode;
schedule. Saving never runs the export.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Response
from pydantic import BaseModel

from segmentsync.auth.policy import Action
from segmentsync.connections import service as connections
from segmentsync.connections.models import ConnectionType
from segmentsync.db import id_from_text
from segmentsync.errors import Forbidden, Invalid, SegmentSyncError
from segmentsync.exports import service, views
from segmentsync.exports.models import RemovalMode, ScheduleMode, SyncMode
from segmentsync.exports.schemas import ExportCreate, ExportOut, ExportUpdate
from segmentsync.segments import extras
from segmentsync.segments import service as segments
from segmentsync.web.forms import build, field_errors
from segmentsync.web.page import Form, Page, PostedForm, page_for
from segmentsync.web.routing import web_router
from segmentsync.web.views.segments import profile_columns

router = web_router()
M = TypeVar("M", bound=BaseModel)
Editor = Annotated[Page, page_for(Action.EXPORTS_EDIT)]
FIELDS = {name: name for name in ExportCreate.model_fields}
DEFAULTS: dict[str, Any] = {
    "name": "", "connection_id": None, "list_id": "", "email_column": "", "attributes": [],
    "create_missing_fields": False, "consent_to_track": "Unchanged", "consent_column": None, "segment_ids": [],
    "sync_mode": SyncMode.ADD_UPDATE.value, "removal_mode": RemovalMode.DELETE.value, "resubscribe": False,
    "schedule_mode": ScheduleMode.SYSTEM.value, "cron": None, "timezone": "UTC",
}  # fmt: skip


def form_data(form: Form) -> dict[str, Any]:
    """The posted form as the export service's input (and as the values to show again)."""
    pairs = zip(form.getlist("attr_column"), form.getlist("attr_target"), strict=False)
    return {
        "name": form.get("name"),
        "connection_id": form.int("connection_id"),
        "list_id": form.get("list_id"),
        "email_column": form.get("email_column"),
        "attributes": [{"column": c, "target": t} for c, t in pairs if c or t],
        "create_missing_fields": form.bool("create_missing_fields"),
        "consent_to_track": form.get("consent_to_track") or "Unchanged",
        "consent_column": form.get("consent_column") or None,
        "segment_ids": [n if (n := id_from_text(v)) is not None else v for v in form.getlist("segment_ids")],
        "sync_mode": form.get("sync_mode") or SyncMode.ADD_UPDATE.value,
        "removal_mode": form.get("removal_mode") or RemovalMode.DELETE.value,
        "resubscribe": form.bool("resubscribe"),
        "schedule_mode": form.get("schedule_mode") or ScheduleMode.SYSTEM.value,
        "cron": form.get("cron") or None,
        "timezone": form.get("timezone") or "UTC",
    }


def _precheck(page: Page, data: dict[str, Any]) -> dict[str, str]:
    """The commonest mistakes, all at once, in the page's language (the service checks everything again)."""
    missing = {
        "name": (not data["name"], page._("Give the export a name.")),
        "connection_id": (data["connection_id"] is None, page._("Choose a connection for the export.")),
        "list_id": (not data["list_id"], page._("Enter the list ID, or pick a list.")),
        "email_column": (
            not data["email_column"],
            page._("Choose the profile column that holds the email address."),
        ),
        "segment_ids": (not data["segment_ids"], page._("Choose at least one segment.")),
    }
    return {field: text for field, (wrong, text) in missing.items() if wrong}


def _checked(page: Page, model: type[M], data: dict[str, Any]) -> M:
    """The service's input, or Invalid listing every problem of the form (``details.messages``)."""
    errors = _precheck(page, data)
    try:
        built = build(model, data)
    except SegmentSyncError as error:
        errors = {**field_errors(page, error, FIELDS), **errors}
    if errors:
        raise Invalid("the form has errors", code="web", details={"messages": errors})
    return built


def _values_of(out: ExportOut) -> dict[str, Any]:
    return {
        **{name: getattr(out, name) for name in DEFAULTS if hasattr(out, name)},
        "connection_id": out.connection.id if out.connection else None,
        "attributes": [item.model_dump() for item in out.attributes],
        "segment_ids": [segment.id for segment in out.segments],
        "sync_mode": out.sync_mode.value, "removal_mode": out.removal_mode.value,
        "schedule_mode": out.schedule_mode.value,
    }  # fmt: skip


def _form(page: Page, *, values: dict[str, Any], export: ExportOut | None = None,
          errors: dict[str, str] | None = None, status: int = 200) -> Response:  # fmt: skip
    with page.transaction() as session:
        usable = list(session.scalars(connections.connection_query(actor=page.me)))
        all_segments = segments.list_segments(session=session)
        offered = extras.offered(
            session, page.runtime.profiles, all_segments
        )  # SQL and dbt segments' columns
    grouped = {kind: [c for c in usable if c.type is kind] for kind in ConnectionType}
    columns, columns_problem = profile_columns(page)
    return page.render(
        "export_form.html", status=status, title=export.name if export else page._("Add export"), export=export,
        values=values, errors=errors or {}, grouped={k: v for k, v in grouped.items() if v},
        connection_types={c.id: c.type.value for c in usable}, columns=columns, columns_problem=columns_problem,
        segments=all_segments, limit=page.runtime.settings.export_limit,
        segment_columns=[(segment, found) for segment, found in offered if not isinstance(found, str) and found],
    )  # fmt: skip


def _error(page: Page, error: SegmentSyncError) -> dict[str, str]:
    if error.code == "web":  # our own checks: already in the page's language
        return dict(error.details["messages"])
    return field_errors(page, error, FIELDS)


def _flash_saved(page: Page, saved: service.Saved) -> None:
    page.flash(page._("The export is saved. Saving never runs it: use Run, or wait for its schedule."))
    for warning in saved.warnings:
        page.flash(warning, "warn")


@router.get("/exports/new")
def new_export(page: Editor, copy_of: int | None = None) -> Response:
    """The empty form, or (``copy_of``) one filled in as a copy of that export: saved only by *Save*."""
    if copy_of is None:
        return _form(page, values=dict(DEFAULTS))
    source = _editable(page, copy_of)
    with page.transaction() as session:
        name = service.copy_name(session, source.name)
    page.flash(page._("A copy of %(name)s: nothing is saved until you press Save.", name=source.name))
    return _form(page, values={**_values_of(source), "name": name})


@router.post("/exports/new")
def create_export(page: Editor, form: PostedForm) -> Response:
    data = form_data(form)
    try:
        saved = service.create(
            runtime=page.runtime, data=_checked(page, ExportCreate, data), actor=page.me, ip=page.ip
        )
    except SegmentSyncError as error:
        return _form(page, values=data, errors=_error(page, error), status=error.status)
    _flash_saved(page, saved)
    return page.redirect(f"/exports/{saved.export_id}")


def _editable(page: Page, export_id: int) -> ExportOut:
    with page.transaction() as session:
        export = service.get(session=session, export_id=export_id, actor=page.me)
        out = views.export_out(session, export, page.me, now=page.runtime.clock())
    if out.permission != "edit":
        raise Forbidden("you may view this export but not change it", code="export_forbidden")
    return out


@router.get("/exports/{export_id}/edit")
def edit_export(export_id: int, page: Editor) -> Response:
    out = _editable(page, export_id)
    return _form(page, values=_values_of(out), export=out)


@router.post("/exports/{export_id}/edit")
def update_export(export_id: int, page: Editor, form: PostedForm) -> Response:
    out = _editable(page, export_id)
    data = form_data(form)
    try:
        saved = service.update(
            runtime=page.runtime,
            export_id=export_id,
            changes=_checked(page, ExportUpdate, data),
            actor=page.me,
            ip=page.ip,
        )
    except SegmentSyncError as error:
        return _form(page, values=data, export=out, errors=_error(page, error), status=error.status)
    _flash_saved(page, saved)
    return page.redirect(f"/exports/{saved.export_id}")
