"""Data > Segments: create, edit, delete, list, refresh (with history), preview, count; a SQL
segment's query checked and previewed before it is saved; the dbt manifest and its models."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, Field

from segmentsync.api.deps import RuntimeDep, SessionDep, client_ip, require
from segmentsync.api.pagination import Page, PageDep
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action
from segmentsync.dbt import manifest as dbt
from segmentsync.errors import SegmentSyncError
from segmentsync.segments import extras, kinds, service
from segmentsync.segments import sql as sqlcheck
from segmentsync.segments.models import SegmentRefresh
from segmentsync.segments.rules import Group
from segmentsync.segments.schemas import (
    CountOut,
    PreviewOut,
    RefreshOut,
    SegmentCreate,
    SegmentOut,
    SegmentUpdate,
)

router = APIRouter(prefix="/segments", tags=["segments"])
Viewer = Annotated[User, Depends(require(Action.SEGMENTS_VIEW))]
Editor = Annotated[User, Depends(require(Action.SEGMENTS_EDIT))]
SqlWriter = Annotated[User, Depends(require(Action.SEGMENTS_SQL))]
Admin = Annotated[User, Depends(require(Action.SEGMENTS_SETTINGS))]
Columns = Annotated[list[str] | None, Query(description="profile columns to show (default: all)")]


class RuleIn(BaseModel):
    rules: Group


class SqlIn(BaseModel):
    sql: str = Field(min_length=1, max_length=100_000)


class SqlCheckOut(BaseModel):
    columns: list[str] = Field(description="the columns the query returns (the profile key among them)")


class SegmentColumnOut(BaseModel):
    name: str = Field(description="the name an export maps, e.g. segment.lifetime_value")
    column: str = Field(description="the column as the query returns it")
    type: str = Field(description="string, integer, float, boolean, date, timestamp or list")


class SegmentColumnsOut(BaseModel):
    segment_id: int
    kind: str
    columns: list[SegmentColumnOut] = Field(
        description="what the segment's query returns besides the profile key (a rule segment: none)"
    )


class DbtColumnOut(BaseModel):
    name: str
    description: str
    data_type: str | None


class DbtModelOut(BaseModel):
    name: str
    package: str
    unique_id: str
    relation: str
    materialized: str
    description: str
    columns: list[DbtColumnOut]
    tests: list[str]


class DbtSettingsIn(BaseModel):
    manifest: str | None = Field(default=None, description="a path or http(s) URL; null: none")


class DbtOut(BaseModel):
    manifest: str | None
    dbt_version: str | None = None
    project: str | None = None
    models: list[DbtModelOut] = []
    error: str | None = Field(default=None, description="why the manifest could not be read")


class SqlPolicyIn(BaseModel):
    admins_only: bool


class SqlPolicyOut(BaseModel):
    admins_only: bool = Field(description="only admins may write SQL segments (else contributors too)")


class RefreshIn(BaseModel):
    segment_ids: list[int] | None = None  # None: every segment


@router.get("", summary="List segments with their member counts and last refresh")
def list_segments(session: SessionDep, actor: Viewer, page: PageDep) -> Page[SegmentOut]:
    segments = service.list_segments(session=session)
    items = [SegmentOut.model_validate(s) for s in segments[page.offset : page.offset + page.limit]]
    return Page(items=items, total=len(segments), limit=page.limit, offset=page.offset)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a segment")
def create_segment(
    body: SegmentCreate, session: SessionDep, runtime: RuntimeDep, actor: Editor, request: Request
) -> SegmentOut:
    segment = service.create(
        session=session, source=runtime.profiles, segment_in=body, actor=actor, ip=client_ip(request)
    )
    return SegmentOut.model_validate(segment)


@router.post("/count", summary="Count the members of a rule that is not saved (the rule builder)")
def count_rule(body: RuleIn, runtime: RuntimeDep, actor: Viewer) -> CountOut:
    return CountOut(
        segment_id=None, member_count=service.count_rule(source=runtime.profiles, rule=body.rules)
    )


@router.post("/preview", summary="The first members of a rule that is not saved")
def preview_rule(
    body: RuleIn, runtime: RuntimeDep, actor: Viewer, columns: Columns = None, limit: int = 20
) -> PreviewOut:
    return service.preview_rule(source=runtime.profiles, rule=body.rules, columns=columns, limit=limit)


@router.post("/refresh", summary="Refresh several segments (default: all) with one scan")
def refresh_segments(
    body: RefreshIn, session: SessionDep, runtime: RuntimeDep, actor: Editor, request: Request
) -> list[RefreshOut]:
    return service.refresh_many(
        session=session, source=runtime.profiles, segment_ids=body.segment_ids, actor=actor,
        ip=client_ip(request),
    )  # fmt: skip


@router.post("/sql/check", summary="Check a SQL segment's query as saving would: its columns")
def check_sql(
    body: SqlIn, session: SessionDep, runtime: RuntimeDep, actor: Editor, _sql: SqlWriter
) -> SqlCheckOut:
    return SqlCheckOut(
        columns=service.check_sql(session=session, source=runtime.profiles, sql=body.sql, actor=actor)
    )


@router.post("/sql/count", summary="Count the members of a SQL query that is not saved")
def count_sql(
    body: SqlIn, session: SessionDep, runtime: RuntimeDep, actor: Editor, _sql: SqlWriter
) -> CountOut:
    query = service.sql_selection(session=session, source=runtime.profiles, sql=body.sql, actor=actor)
    return CountOut(segment_id=None, member_count=service.count_rule(source=runtime.profiles, rule=query))


@router.post("/sql/preview", summary="The first members of a SQL query that is not saved")
def preview_sql(
    body: SqlIn,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: Editor,
    _sql: SqlWriter,
    columns: Columns = None,
    limit: int = 20,
) -> PreviewOut:
    query = service.sql_selection(session=session, source=runtime.profiles, sql=body.sql, actor=actor)
    return service.preview_rule(source=runtime.profiles, rule=query, columns=columns, limit=limit)


@router.get("/sql/policy", summary="Who may write SQL segments")
def sql_policy(session: SessionDep, actor: Viewer) -> SqlPolicyOut:
    return SqlPolicyOut(admins_only=kinds.options(session).sql_admins_only)


@router.put("/sql/policy", summary="Restrict SQL segments to admins, or open them to contributors")
def set_sql_policy(body: SqlPolicyIn, session: SessionDep, actor: Admin, request: Request) -> SqlPolicyOut:
    kinds.set_sql_admins_only(session=session, actor=actor, value=body.admins_only, ip=client_ip(request))
    return SqlPolicyOut(admins_only=body.admins_only)


@router.get("/dbt", summary="The dbt manifest and its models (description, columns, tests)")
def dbt_models(session: SessionDep, runtime: RuntimeDep, actor: Viewer) -> DbtOut:
    return dbt_out(session, runtime.profiles.engine)


@router.put("/dbt", summary="Set the dbt manifest (a path or URL of target/manifest.json)")
def set_dbt_manifest(
    body: DbtSettingsIn, session: SessionDep, runtime: RuntimeDep, actor: Admin, request: Request
) -> DbtOut:
    kinds.set_manifest(session=session, actor=actor, location=body.manifest, ip=client_ip(request))
    return dbt_out(session, runtime.profiles.engine)


def dbt_out(session: sa.orm.Session, engine: str) -> DbtOut:
    """The manifest's models as the API and the dbt tab show them; a manifest that cannot be read
    is an ``error`` in the answer, not a failure."""
    location = kinds.options(session).dbt_manifest
    if not location:
        return DbtOut(manifest=None)
    try:
        found = dbt.load(location)
    except SegmentSyncError as exc:
        return DbtOut(manifest=location, error=exc.message)
    dialect = sqlcheck.dialect_of(engine)
    models = [
        DbtModelOut(
            name=m.name,
            package=m.package,
            unique_id=m.unique_id,
            relation=m.relation(dialect),
            materialized=m.materialized,
            description=m.description,
            columns=[
                DbtColumnOut(name=c.name, description=c.description, data_type=c.data_type) for c in m.columns
            ],
            tests=m.tests,
        )
        for m in found.listing()
    ]
    return DbtOut(manifest=location, dbt_version=found.dbt_version, project=found.project, models=models)


@router.get("/{segment_id}", summary="One segment")
def get_segment(segment_id: int, session: SessionDep, actor: Viewer) -> SegmentOut:
    return SegmentOut.model_validate(service.get(session=session, segment_id=segment_id))


@router.patch("/{segment_id}", summary="Change a segment's name, description or rule")
def update_segment(
    segment_id: int,
    body: SegmentUpdate,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: Editor,
    request: Request,
) -> SegmentOut:
    segment = service.update(
        session=session, source=runtime.profiles, segment_id=segment_id, segment_in=body, actor=actor,
        ip=client_ip(request),
    )  # fmt: skip
    return SegmentOut.model_validate(segment)


@router.delete(
    "/{segment_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete (refused while exports use it)"
)
def delete_segment(segment_id: int, session: SessionDep, actor: Editor, request: Request) -> Response:
    service.delete(session=session, segment_id=segment_id, actor=actor, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{segment_id}/refresh", summary="Count the members now and store it")
def refresh_segment(
    segment_id: int, session: SessionDep, runtime: RuntimeDep, actor: Editor, request: Request
) -> RefreshOut:
    return service.refresh(
        session=session, source=runtime.profiles, segment_id=segment_id, actor=actor, ip=client_ip(request)
    )


@router.get("/{segment_id}/refreshes", summary="The segment's refresh history, newest first")
def refresh_history(segment_id: int, session: SessionDep, actor: Viewer, page: PageDep) -> Page[RefreshOut]:
    segment = service.get(session=session, segment_id=segment_id)
    entries = service.history(session=session, segment_id=segment_id, limit=page.offset + page.limit)
    total = session.scalar(
        sa.select(sa.func.count()).select_from(SegmentRefresh).where(SegmentRefresh.segment_id == segment_id)
    )
    items = [
        RefreshOut(
            segment_id=segment.id,
            segment_name=segment.name,
            started_at=entry.started_at,
            duration_ms=entry.duration_ms,
            member_count=entry.member_count,
            error=entry.error,
        )
        for entry in entries[page.offset :]
    ]
    return Page(items=items, total=total or 0, limit=page.limit, offset=page.offset)


@router.get("/{segment_id}/preview", summary="The first members (by profile key)")
def preview_segment(
    segment_id: int,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: Viewer,
    columns: Columns = None,
    limit: int = 20,
) -> PreviewOut:
    return service.preview(
        session=session, source=runtime.profiles, segment_id=segment_id, columns=columns, limit=limit
    )


@router.get(
    "/{segment_id}/columns",
    summary="The columns a SQL or dbt segment returns besides the key, which an export may map",
)
def segment_columns(
    segment_id: int, session: SessionDep, runtime: RuntimeDep, actor: Viewer
) -> SegmentColumnsOut:
    segment = service.get(session=session, segment_id=segment_id)
    found = extras.columns_of(session, runtime.profiles, segment)
    return SegmentColumnsOut(
        segment_id=segment.id,
        kind=segment.kind,
        columns=[SegmentColumnOut(name=c.name, column=c.column, type=c.type.value) for c in found],
    )


@router.get("/{segment_id}/count", summary="The member count now (not stored)")
def count_segment(segment_id: int, session: SessionDep, runtime: RuntimeDep, actor: Viewer) -> CountOut:
    return CountOut(
        segment_id=segment_id,
        member_count=service.count(session=session, source=runtime.profiles, segment_id=segment_id),
    )
