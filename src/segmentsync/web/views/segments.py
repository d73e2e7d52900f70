"""Data > Segments: the list, the rule builder (new and edit), preview members, refresh, delete."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Response
from pydantic import ValidationError

from segmentsync.auth.policy import Action
from segmentsync.errors import Invalid, SegmentSyncError
from segmentsync.segments import rules as rule_shapes
from segmentsync.segments import service
from segmentsync.segments.compile import ALLOWED
from segmentsync.segments.models import Segment
from segmentsync.segments.schemas import PreviewOut, SegmentCreate, SegmentUpdate
from segmentsync.web.forms import FORM_ERROR, build, field_errors, invalid
from segmentsync.web.labels import LABELS
from segmentsync.web.messages import clean_loc
from segmentsync.web.page import Form, Page, PostedForm, page_for
from segmentsync.web.routing import web_router

router = web_router()
Viewer = Annotated[Page, page_for(Action.SEGMENTS_VIEW)]
Editor = Annotated[Page, page_for(Action.SEGMENTS_EDIT)]
FIELDS = {"name": "name", "description": "description", "rules": "rules"}
PREVIEW_ROWS = 20
EMPTY_RULE = {"op": "and", "negate": False, "items": []}


def profile_columns(page: Page) -> tuple[dict[str, str], str | None]:
    """``{column: type}`` of the profile table, or why there is none (no profiles loaded yet)."""
    try:
        return {name: kind.value for name, kind in page.runtime.profiles.columns().items()}, None
    except SegmentSyncError as error:
        return {}, page.error_text(error)


def builder_config(page: Page, columns: dict[str, str]) -> dict[str, Any]:
    """What the rule builder's script needs: columns, operators per type, words."""
    return {
        "columns": columns,
        "operators": {kind.value: sorted(op.value for op in ops) for kind, ops in ALLOWED.items()},
        "operatorLabels": {key: page._(text) for key, text in LABELS["operator"].items()},
        "typeLabels": {key: page._(text) for key, text in LABELS["column_type"].items()},
        "noValue": sorted(op.value for op in rule_shapes.NO_VALUE),
        "listValue": sorted(op.value for op in rule_shapes.LIST_VALUE),
        "daysValue": sorted(op.value for op in rule_shapes.DAYS_VALUE),
        "words": {
            "all": page._("all of"), "any": page._("any of"), "not": page._("not"),
            "addCondition": page._("Add condition"), "addGroup": page._("Add group"),
            "remove": page._("Remove"), "column": page._("Column"), "operator": page._("Operator"),
            "value": page._("Value"), "and": page._("and"), "days": page._("days"),
            "listHint": page._("separate values with commas"), "ignoreCase": page._("ignore case"),
            "yes": page._("Yes"), "no": page._("No"), "everyone": page._("No conditions: every profile is a member."),
            "json": page._("Edit as JSON"), "builder": page._("Back to the builder"),
            "badJson": page._("This is not valid JSON."),
        },
    }  # fmt: skip


@router.get("/segments")
def segments(page: Viewer) -> Response:
    with page.transaction() as session:
        rows = service.list_segments(session=session)
        used = service.exports_using_each(session=session, segment_ids=[s.id for s in rows])
        texts = {s.id: _describe(s) for s in rows}
    return page.render("segments.html", title=page._("Segments"), segments=rows, used=used, texts=texts)


def _describe(segment: Segment) -> str:
    try:
        return service.rules_of(segment).describe()
    except ValueError:
        return "?"


def _errors(page: Page, error: SegmentSyncError) -> dict[str, str]:
    """Each error beside its field; a rule's error also names the condition (the builder marks it)."""
    errors = field_errors(page, error, FIELDS, default="rules")
    paths = [
        ".".join(str(part) for part in clean_loc(item.get("loc", ())))
        for item in error.details.get("errors", [])
    ]
    paths = [path for path in [*paths, error.field or ""] if path.startswith("rules.")]
    if "rules" in errors and paths:
        errors["rules_path"] = paths[0]
    return errors


def _rule_data(form: Form) -> Any:
    """The rule as posted (JSON text from the builder), parsed but not yet checked."""
    try:
        return json.loads(form.raw("rules") or json.dumps(EMPTY_RULE))
    except ValueError:
        bad = {"loc": ["rules"], "type": "json_invalid", "msg": "Invalid JSON", "ctx": {}}
        raise Invalid("rules: not valid JSON", field="rules", details={"errors": [bad]}) from None


def _rule(form: Form) -> rule_shapes.Group:
    try:
        return rule_shapes.Group.model_validate(_rule_data(form))
    except ValidationError as exc:
        raise invalid(exc, prefix=("rules",)) from exc


def _editor(page: Page, *, segment: Segment | None, values: dict[str, Any], errors: dict[str, str] | None = None,
            preview: PreviewOut | None = None, count: int | None = None, status: int = 200) -> Response:  # fmt: skip
    columns, columns_problem = profile_columns(page)
    used, history = [], []
    if segment is not None:
        with page.transaction() as session:
            used = service.exports_using(session=session, segment_id=segment.id)
            history = service.history(session=session, segment_id=segment.id, limit=10)
    return page.render(
        "segment.html", status=status, title=segment.name if segment else page._("New segment"), segment=segment,
        values=values, errors=errors or {}, preview=preview, count=count, columns=columns,
        columns_problem=columns_problem, config=builder_config(page, columns), used=used, history=history,
        can_edit=page.can(Action.SEGMENTS_EDIT), rule=segment.rules if segment else EMPTY_RULE,
    )  # fmt: skip


def _values(segment: Segment) -> dict[str, Any]:
    return {"name": segment.name, "description": segment.description, "rules": json.dumps(segment.rules)}


@router.get("/segments/new")
def new_segment(page: Editor) -> Response:
    return _editor(
        page, segment=None, values={"name": "", "description": "", "rules": json.dumps(EMPTY_RULE)}
    )


def _preview(page: Page, form: Form, segment: Segment | None) -> Response:
    """Preview members of the rule as typed (nothing is saved)."""
    try:
        rule = _rule(form)
        source = page.runtime.profiles
        preview = service.preview_rule(source=source, rule=rule, limit=PREVIEW_ROWS, now=page.runtime.clock())
        count = service.count_rule(source=source, rule=rule, now=page.runtime.clock())
    except SegmentSyncError as error:
        errors = _errors(page, error)
        return _editor(page, segment=segment, values=form.values(), errors=errors, status=error.status)
    return _editor(page, segment=segment, values=form.values(), preview=preview, count=count)


@router.post("/segments/new")
def create_segment(page: Editor, form: PostedForm) -> Response:
    if form.get("action") == "preview":
        return _preview(page, form, None)
    try:
        data = build(
            SegmentCreate,
            {"name": form.get("name"), "description": form.get("description"), "rules": _rule_data(form)},
        )
        with page.transaction() as session:
            segment = service.create(
                session=session, source=page.runtime.profiles, segment_in=data, actor=page.me, ip=page.ip
            )
            segment_id = segment.id
            service.refresh(session=session, source=page.runtime.profiles, segment_id=segment_id, actor=page.me, ip=page.ip,
                            now=page.runtime.clock())  # fmt: skip
    except SegmentSyncError as error:
        errors = _errors(page, error)
        return _editor(page, segment=None, values=form.values(), errors=errors, status=error.status)
    page.flash(page._("The segment %(name)s is saved.", name=data.name))
    return page.redirect(f"/segments/{segment_id}")


@router.post("/segments/refresh")
def refresh_all(page: Editor, form: PostedForm) -> Response:
    with page.transaction() as session:
        results = service.refresh_many(
            session=session,
            source=page.runtime.profiles,
            segment_ids=None,
            actor=page.me,
            ip=page.ip,
            now=page.runtime.clock(),
        )
    failed = [r.segment_name for r in results if r.error]
    if failed:
        page.flash(
            page._("These segments could not be refreshed: %(names)s", names=", ".join(failed)), "error"
        )
    else:
        page.flash(page._("Every segment is refreshed."))
    return page.redirect("/segments")


def _segment(page: Page, segment_id: int) -> Segment:
    with page.transaction() as session:
        return service.get(session=session, segment_id=segment_id)


@router.get("/segments/{segment_id}")
def segment_page(segment_id: int, page: Viewer, preview: bool = False) -> Response:
    segment = _segment(page, segment_id)
    if not preview:
        return _editor(page, segment=segment, values=_values(segment))
    try:
        with page.transaction() as session:
            out = service.preview(
                session=session, source=page.runtime.profiles, segment_id=segment_id, limit=PREVIEW_ROWS,
                now=page.runtime.clock(),
            )  # fmt: skip
    except SegmentSyncError as error:
        return _editor(
            page, segment=segment, values=_values(segment), errors={"rules": page.error_text(error)}
        )
    return _editor(page, segment=segment, values=_values(segment), preview=out)


@router.post("/segments/{segment_id}")
def update_segment(segment_id: int, page: Editor, form: PostedForm) -> Response:
    segment = _segment(page, segment_id)
    if form.get("action") == "preview":
        return _preview(page, form, segment)
    try:
        data = build(
            SegmentUpdate,
            {"name": form.get("name"), "description": form.get("description"), "rules": _rule_data(form)},
        )
        with page.transaction() as session:
            service.update(
                session=session,
                source=page.runtime.profiles,
                segment_id=segment_id,
                segment_in=data,
                actor=page.me,
                ip=page.ip,
            )
            service.refresh(
                session=session, source=page.runtime.profiles, segment_id=segment_id, actor=page.me, ip=page.ip,
                now=page.runtime.clock(),
            )  # fmt: skip
    except SegmentSyncError as error:
        errors = _errors(page, error)
        return _editor(page, segment=segment, values=form.values(), errors=errors, status=error.status)
    page.flash(page._("The segment is saved."))
    return page.redirect(f"/segments/{segment_id}")


@router.post("/segments/{segment_id}/refresh")
def refresh(segment_id: int, page: Editor, form: PostedForm) -> Response:
    with page.transaction() as session:
        result = service.refresh(
            session=session, source=page.runtime.profiles, segment_id=segment_id, actor=page.me, ip=page.ip,
            now=page.runtime.clock(),
        )  # fmt: skip
    if result.error:
        page.flash(page._("The refresh failed: %(error)s", error=result.error), "error")
    else:
        page.flash(page._("Refreshed: %(count)s members.", count=page.number(result.member_count)))
    return page.redirect(form.get("next") if form.get("next") == "/segments" else f"/segments/{segment_id}")


@router.post("/segments/{segment_id}/delete")
def delete(segment_id: int, page: Editor, form: PostedForm) -> Response:
    try:
        with page.transaction() as session:
            service.delete(session=session, segment_id=segment_id, actor=page.me, ip=page.ip)
    except SegmentSyncError as error:
        if error.code not in ("segment_in_use", "segment_used_by_restricted_exports"):
            raise
        segment = _segment(page, segment_id)
        return _editor(
            page, segment=segment, values=_values(segment), errors={FORM_ERROR: error.message}, status=409
        )
    page.flash(page._("The segment is removed."))
    return page.redirect("/segments")
