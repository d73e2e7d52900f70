"""Data > Segments: create, edit, delete, list, refresh (with history), preview, count."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel

from segmentsync.api.deps import RuntimeDep, SessionDep, client_ip, require
from segmentsync.api.pagination import Page, PageDep
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action
from segmentsync.segments import service
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
Columns = Annotated[list[str] | None, Query(description="profile columns to show (default: all)")]


class RuleIn(BaseModel):
    rules: Group


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


@router.get("/{segment_id}/count", summary="The member count now (not stored)")
def count_segment(segment_id: int, session: SessionDep, runtime: RuntimeDep, actor: Viewer) -> CountOut:
    return CountOut(
        segment_id=segment_id,
        member_count=service.count(session=session, source=runtime.profiles, segment_id=segment_id),
    )
