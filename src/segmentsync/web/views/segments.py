"""Data > Segments: the list, the segment page (new and edit) with its three tabs — the rule
builder, a SQL query, a dbt model — preview members, refresh, delete.

The SQL tab's textarea is a plain form field; ``static/sql-editor.js`` turns it into a CodeMirror
editor (vendored in ``static/vendor/``) that highlights the query as it is typed and, 400 ms after
typing stops, asks ``POST /segments/sql/check`` whether the query passes the check a save makes
(only sqlglot's: no query of the profile source), marking the refusal at its line and column.
Without JavaScript, the query is highlighted by Pygments on the server after a preview or a refused
save (line numbers, the line of an error marked). Nothing is loaded from elsewhere, so the page
keeps its strict CSP.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from markupsafe import Markup
from pydantic import ValidationError
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import SqlLexer

from segmentsync.auth.policy import Action
from segmentsync.dbt import manifest as dbt
from segmentsync.errors import Invalid, SegmentSyncError, Unauthenticated
from segmentsync.profiles.source import KeyQuery
from segmentsync.segments import kinds, service
from segmentsync.segments import rules as rule_shapes
from segmentsync.segments import sql as sqlcheck
from segmentsync.segments.compile import ALLOWED
from segmentsync.segments.models import Segment
from segmentsync.segments.schemas import PreviewOut, SegmentCreate, SegmentOut, SegmentUpdate
from segmentsync.web import sql_problems
from segmentsync.web.forms import FORM_ERROR, build, field_errors, invalid
from segmentsync.web.labels import LABELS
from segmentsync.web.messages import clean_loc
from segmentsync.web.page import AnyPage, Form, Page, PostedForm, page_for, posted_form
from segmentsync.web.routing import web_router

router = web_router()
Viewer = Annotated[Page, page_for(Action.SEGMENTS_VIEW)]
Editor = Annotated[Page, page_for(Action.SEGMENTS_EDIT)]
FIELDS = {
    "name": "name",
    "description": "description",
    "rules": "rules",
    "sql": "sql",
    "dbt_model": "dbt_model",
}
PREVIEW_ROWS = 20
# The profile source's engine → the SQL editor's dialect (@codemirror/lang-sql's; DuckDB's SQL is
# PostgreSQL's, give or take): which words it highlights as keywords and types.
EDITOR_DIALECTS = {"duckdb": "PostgreSQL", "postgres": "PostgreSQL"}
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


PER_PAGE = 100  # segments listed per page (a year-old installation has hundreds)


@router.get("/segments")
def segments(page: Viewer, offset: int = 0) -> Response:
    offset = max(offset, 0)
    with page.transaction() as session:
        total = session.scalar(sa.select(sa.func.count()).select_from(Segment)) or 0
        rows = list(
            session.scalars(
                sa.select(Segment).order_by(Segment.name, Segment.id).limit(PER_PAGE).offset(offset)
            )
        )
        used = service.exports_using_each(session=session, segment_ids=[s.id for s in rows])
        texts = {s.id: _describe(s) for s in rows}
    return page.render(
        "segments.html", title=page._("Segments"), segments=rows, used=used, texts=texts, total=total,
        offset=offset, limit=PER_PAGE, can_edit=page.can(Action.SEGMENTS_EDIT),
    )  # fmt: skip


_DESCRIBED: dict[tuple[int, Any, str], str] = {}  # (id, updated_at, kind) → the rule in words
DESCRIBED_AT_MOST = 2_000


def _describe(segment: Segment) -> str:
    """The segment's rule in words, kept until the segment changes (its ``updated_at``): the list
    shows the same segments request after request, and validating a rule to word it is most of
    what a row costs."""
    key = (segment.id, segment.updated_at, segment.kind)
    found = _DESCRIBED.get(key)
    if found is None:
        try:
            found = SegmentOut.model_validate(segment).rule_text
        except ValueError:
            found = "?"
        if len(_DESCRIBED) >= DESCRIBED_AT_MOST:
            _DESCRIBED.clear()
        _DESCRIBED[key] = found
    return found


def _errors(page: Page, error: SegmentSyncError, kind: str = "rule") -> dict[str, str]:
    """Each error beside its field; a rule's error also names the condition (the builder marks it)."""
    default = {"sql": "sql", "dbt": "dbt_model"}.get(kind, "rules")
    errors = field_errors(page, error, FIELDS, default=default)
    paths = [
        ".".join(str(part) for part in clean_loc(item.get("loc", ())))
        for item in error.details.get("errors", [])
    ]
    paths = [path for path in [*paths, error.field or ""] if path.startswith("rules.")]
    if "rules" in errors and paths:
        errors["rules_path"] = paths[0]
    if "sql" in errors and sql_problems.is_sql_problem(error):
        errors["sql"] = sql_problems.problem_text(page.tr, error)
    if "sql" in errors and isinstance(error.details.get("line"), int):
        errors["sql_line"] = str(error.details["line"])
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


def _kind(form: Form) -> str:
    kind = form.get("kind") or "rule"
    return kind if kind in kinds.KINDS else "rule"


def _definition(form: Form) -> dict[str, Any]:
    """The one definition the chosen tab gives (the other tabs' fields are ignored)."""
    kind = _kind(form)
    if kind == "sql":
        return {"sql": form.raw("sql") or ""}
    if kind == "dbt":
        return {"dbt_model": form.get("dbt_model") or ""}
    return {"rules": _rule_data(form)}  # checked by the schema: every problem at once


def sql_view(text: str, error_line: int | None) -> Markup | None:
    """The query highlighted, with line numbers and the line of an error marked."""
    if not text.strip():
        return None
    lines = [error_line] if error_line else []
    formatter = HtmlFormatter(linenos="inline", hl_lines=lines, nowrap=False, cssclass="highlight")
    return Markup(highlight(text, SqlLexer(), formatter))  # noqa: S704  # Pygments escapes the text


def _dbt_listing(page: Page) -> dict[str, Any]:
    """The dbt tab: the manifest's models with their relation, description, columns and tests."""
    with page.transaction() as session:
        location = kinds.options(session).dbt_manifest
    if not location:
        return {"models": [], "error": None, "location": None, "version": None}
    try:
        found = dbt.load(location)
    except SegmentSyncError as error:
        return {"models": [], "error": page.error_text(error), "location": location, "version": None}
    dialect = sqlcheck.dialect_of(page.runtime.profiles.engine)
    models = [
        {"name": m.name, "relation": m.relation(dialect), "materialized": m.materialized,
         "description": m.description, "columns": m.columns, "tests": m.tests}
        for m in found.listing()
    ]  # fmt: skip
    return {"models": models, "error": None, "location": location, "version": found.dbt_version}


def _may_write_sql(page: Page) -> bool:
    if not page.can(Action.SEGMENTS_SQL):
        return False
    with page.transaction() as session:
        return not kinds.options(session).sql_admins_only or page.me.role.value == "admin"


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
        can_write_sql=_may_write_sql(page), dbt=_dbt_listing(page), key_column=page.runtime.profiles.key,
        sql_dialect=EDITOR_DIALECTS.get(page.runtime.profiles.engine, "StandardSQL"),
        sql_view=sql_view(values.get("sql") or "", int((errors or {}).get("sql_line") or 0) or None),
    )  # fmt: skip


def _values(segment: Segment) -> dict[str, Any]:
    return {
        "name": segment.name, "description": segment.description, "kind": segment.kind or "rule",
        "rules": json.dumps(segment.rules if segment.rules is not None else EMPTY_RULE),
        "sql": segment.sql or "", "dbt_model": segment.dbt_model or "",
    }  # fmt: skip


@router.get("/segments/new")
def new_segment(page: Editor) -> Response:
    return _editor(
        page, segment=None, values={"name": "", "description": "", "rules": json.dumps(EMPTY_RULE)}
    )


def _preview(page: Page, form: Form, segment: Segment | None) -> Response:
    """Preview members of the rule, query or model as chosen (nothing is saved)."""
    kind = _kind(form)
    try:
        source = page.runtime.profiles
        rule: rule_shapes.Group | KeyQuery
        with page.transaction() as session:
            if kind == "sql":
                rule = service.sql_selection(
                    session=session, source=source, sql=form.raw("sql") or "", actor=page.me
                )
            elif kind == "dbt":
                rule = kinds.dbt_query(form.get("dbt_model") or "", source, kinds.manifest(session))
            else:
                rule = _rule(form)
        preview = service.preview_rule(source=source, rule=rule, limit=PREVIEW_ROWS, now=page.runtime.clock())
        count = service.count_rule(source=source, rule=rule, now=page.runtime.clock())
    except SegmentSyncError as error:
        errors = _errors(page, error, kind)
        return _editor(page, segment=segment, values=form.values(), errors=errors, status=error.status)
    return _editor(page, segment=segment, values=form.values(), preview=preview, count=count)


@router.post("/segments/new")
def create_segment(page: Editor, form: PostedForm) -> Response:
    if form.get("action") == "preview":
        return _preview(page, form, None)
    try:
        data = build(
            SegmentCreate,
            {"name": form.get("name"), "description": form.get("description"), **_definition(form)},
        )
        with page.transaction() as session:
            segment = service.create(
                session=session, source=page.runtime.profiles, segment_in=data, actor=page.me, ip=page.ip
            )
            segment_id = segment.id
            service.refresh(session=session, source=page.runtime.profiles, segment_id=segment_id, actor=page.me, ip=page.ip,
                            now=page.runtime.clock())  # fmt: skip
    except SegmentSyncError as error:
        errors = _errors(page, error, _kind(form))
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


async def _form_or_refusal(request: Request) -> Form | SegmentSyncError:
    """The posted form with its CSRF token checked, or the refusal (answered as JSON, not a page)."""
    try:
        return await posted_form(request)
    except SegmentSyncError as error:
        return error


@router.post("/segments/sql/check")
def check_sql_as_typed(
    page: AnyPage, form: Annotated[Form | SegmentSyncError, Depends(_form_or_refusal)]
) -> JSONResponse:
    """The SQL editor's check as it is typed: the check a save makes (sqlglot's parse and the
    read-only rules of :mod:`segmentsync.segments.sql`), without running anything on the profile
    source. ``{"ok": true, "message"}``, or the refusal with its ``line`` and ``column`` and the
    message in the page's language (422; 403 for a missing CSRF token or a role or policy that does
    not allow writing SQL; 401 signed out)."""
    try:
        if isinstance(form, SegmentSyncError):
            raise form
        if page.user is None:
            raise Unauthenticated("sign in to check a query")
        with page.transaction() as session:
            kinds.check_may_write_sql(session, page.me)
        sqlcheck.check(form.raw("sql"), page.runtime.profiles.engine)
    except SegmentSyncError as error:
        where = sql_problems.place(error)
        text = (
            sql_problems.problem_text(page.tr, error)
            if sql_problems.is_sql_problem(error)
            else page.error_text(error)
        )
        answer = {"ok": False, "code": error.code, "message": text,
                  "line": where[0] if where else None, "column": where[1] if where else None}  # fmt: skip
        return JSONResponse(answer, status_code=error.status, headers={"Cache-Control": "no-store"})
    return JSONResponse(
        {"ok": True, "message": page._("The query passes the check: one SELECT that only reads.")},
        headers={"Cache-Control": "no-store"},
    )


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
            {"name": form.get("name"), "description": form.get("description"), **_definition(form)},
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
        errors = _errors(page, error, _kind(form))
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
