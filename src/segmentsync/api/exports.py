"""Data > Exports: create, edit, duplicate, detach, attach, remove, run, run all, and their runs.

Routes that ask the platform about the list (create, edit, attach) end the request's transaction
first (:func:`_release`): the service then works in short transactions of its own, and a token
refresh can commit in its own (on SQLite it needs the write lock the request would hold).
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from sqlalchemy.orm import Session

from segmentsync.api.app import API_PREFIX
from segmentsync.api.deps import RuntimeDep, SessionDep, client_ip, require
from segmentsync.api.pagination import KeyPageDep, Page, PageDep, by_key, key_int, paginate
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action
from segmentsync.errors import NotFound
from segmentsync.exports import idempotency, runs, service, views
from segmentsync.exports.models import Export, Run
from segmentsync.exports.schemas import (
    AttachIn,
    DuplicateIn,
    ExportCreate,
    ExportOut,
    ExportRow,
    ExportUpdate,
    RunAllOut,
    RunOut,
    RunStartIn,
)
from segmentsync.runtime import Runtime

router = APIRouter(prefix="/exports", tags=["exports"])
Viewer = Annotated[User, Depends(require(Action.EXPORTS_VIEW))]
Editor = Annotated[User, Depends(require(Action.EXPORTS_EDIT))]
Runner = Annotated[User, Depends(require(Action.EXPORTS_RUN))]
RunViewer = Annotated[User, Depends(require(Action.RUNS_VIEW))]


def _release(session: Session) -> None:
    """End the request's transaction before the platform is called (see the module docstring)."""
    session.commit()


def _out(session: Session, runtime: Runtime, export: Export, actor: User) -> ExportOut:
    return views.export_out(session, export, actor, now=runtime.clock())


def _saved(runtime: Runtime, saved: service.Saved, actor: User) -> ExportOut:
    with runtime.readers() as session:
        export = service.get(session=session, export_id=saved.export_id, actor=actor)
        return views.export_out(
            session, export, actor, now=runtime.clock(), members=saved.members, warnings=saved.warnings
        )


@router.get("", summary="List exports (search, sort, filter by connection)")
def list_exports(
    session: SessionDep,
    actor: Viewer,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=200, description="search names, lists, connections")] = None,
    sort: Annotated[
        str, Query(description="name, connection, type, schedule, last_run, created, updated; -x: descending")
    ] = "name",
    connection_id: int | None = None,
) -> Page[ExportRow]:
    query = views.export_query(actor=actor, search=q, sort=sort, connection_id=connection_id)
    found, total = paginate(session, query, page)
    return Page(
        items=views.export_rows(session, found, actor), total=total, limit=page.limit, offset=page.offset
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an export (saving never runs it)")
def create_export(
    body: ExportCreate, session: SessionDep, runtime: RuntimeDep, actor: Editor, request: Request
) -> ExportOut:
    _release(session)
    saved = service.create(runtime=runtime, data=body, actor=actor, ip=client_ip(request))
    return _saved(runtime, saved, actor)


@router.post("/run-all", summary="Run all: queue every export with an active schedule now")
def run_all(session: SessionDep, runtime: RuntimeDep, actor: Runner, request: Request) -> RunAllOut:
    queued, skipped = service.run_all(session=session, actor=actor, ip=client_ip(request))
    return RunAllOut(queued=[s for r in queued if (s := views.run_summary(r)) is not None], skipped=skipped)


@router.get("/{export_id}", summary="One export, with your permission on it")
def get_export(export_id: int, session: SessionDep, runtime: RuntimeDep, actor: Viewer) -> ExportOut:
    return _out(session, runtime, service.get(session=session, export_id=export_id, actor=actor), actor)


@router.patch("/{export_id}", summary="Edit an export (only the fields sent change)")
def update_export(
    export_id: int,
    body: ExportUpdate,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: Editor,
    request: Request,
) -> ExportOut:
    _release(session)
    saved = service.update(
        runtime=runtime, export_id=export_id, changes=body, actor=actor, ip=client_ip(request)
    )
    return _saved(runtime, saved, actor)


@router.delete(
    "/{export_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove an export (its runs are kept)"
)
def remove_export(export_id: int, session: SessionDep, actor: Editor, request: Request) -> Response:
    export = service.get(session=session, export_id=export_id, actor=actor)
    service.remove(session=session, export=export, actor=actor, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{export_id}/duplicate", status_code=status.HTTP_201_CREATED, summary="Duplicate (Copy of …)")
def duplicate_export(
    export_id: int,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: Editor,
    request: Request,
    body: DuplicateIn | None = None,
) -> ExportOut:
    export = service.get(session=session, export_id=export_id, actor=actor)
    saved = service.duplicate(
        session=session, runtime=runtime, export=export, actor=actor,
        name=body.name if body else None, ip=client_ip(request),
    )  # fmt: skip
    copy = service.get(session=session, export_id=saved.export_id, actor=actor)
    return views.export_out(
        session, copy, actor, now=runtime.clock(), members=saved.members, warnings=saved.warnings
    )


@router.post("/{export_id}/detach", summary="Detach the connection (export kept, inactive)")
def detach_export(
    export_id: int, session: SessionDep, runtime: RuntimeDep, actor: Editor, request: Request
) -> ExportOut:
    export = service.get(session=session, export_id=export_id, actor=actor)
    service.detach(session=session, export=export, actor=actor, ip=client_ip(request))
    return _out(session, runtime, export, actor)


@router.post("/{export_id}/attach", summary="Attach a connection (the list is checked on it)")
def attach_export(
    export_id: int, body: AttachIn, session: SessionDep, runtime: RuntimeDep, actor: Editor, request: Request
) -> ExportOut:
    _release(session)
    saved = service.attach(
        runtime=runtime,
        export_id=export_id,
        connection_id=body.connection_id,
        actor=actor,
        ip=client_ip(request),
    )
    return _saved(runtime, saved, actor)


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        description="the same key within 24 hours answers the same run (200, Idempotent-Replayed: "
        "true) instead of starting another; e.g. a UUID, or the orchestrator's task-run id",
    ),
]
RUN_STARTED: dict[int | str, dict[str, Any]] = {
    status.HTTP_201_CREATED: {"description": "Queued; Location is the run's URL (GET it with ?wait=)"},
    status.HTTP_200_OK: {"description": "This Idempotency-Key queued this run already (Idempotent-Replayed)"},
}


def _trigger(
    *,
    session: Session,
    runtime: Runtime,
    actor: User,
    export: Export,
    body: RunStartIn | None,
    key: str | None,
    response: Response,
) -> RunOut:
    """Queue a run of ``export``; with an idempotency key, at most one per key and 24 hours."""
    body = body or RunStartIn()
    now = runtime.clock()
    print_ = idempotency.fingerprint(export.id, body.dry_run, body.full_resync)
    if key is not None:
        key = idempotency.check_key(key)
        earlier = idempotency.find(session, user_id=actor.id, key=key, now=now)
        if earlier is None:
            earlier = idempotency.claim(session, user_id=actor.id, key=key, print_=print_, now=now)
        if earlier is not None:
            idempotency.same_request(earlier, print_)
            if earlier.run_id is not None:
                run = runs.get_run(session, earlier.run_id)
                response.status_code = status.HTTP_200_OK
                response.headers["Idempotent-Replayed"] = "true"
                response.headers["Location"] = f"{API_PREFIX}/runs/{run.id}"
                return views.run_outs(session, [run], now=now)[0]
    run = service.run(
        session=session, export=export, actor=actor, dry_run=body.dry_run, full_resync=body.full_resync
    )
    if key is not None:
        idempotency.remember_run(session, user_id=actor.id, key=key, run_id=run.id)
    response.headers["Location"] = f"{API_PREFIX}/runs/{run.id}"
    return views.run_out(run, now=now, triggered_by=actor.email)


@router.post(
    "/{export_id}/runs",
    status_code=status.HTTP_201_CREATED,
    summary="Run now (or a dry run, or a full resync); a worker picks it up",
    responses=RUN_STARTED,
)
def start_run(
    export_id: int,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: Runner,
    response: Response,
    body: RunStartIn | None = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> RunOut:
    export = service.get(session=session, export_id=export_id, actor=actor)
    return _trigger(
        session=session, runtime=runtime, actor=actor, export=export, body=body, key=idempotency_key,
        response=response,
    )  # fmt: skip


@router.post(
    "/by-name/{name}/runs",
    status_code=status.HTTP_201_CREATED,
    summary="Run an export named NAME now (for scripts and orchestrators that know names, not ids)",
    responses=RUN_STARTED,
)
def start_run_by_name(
    name: Annotated[str, Path(max_length=200, description="the export's name (URL-encoded)")],
    session: SessionDep,
    runtime: RuntimeDep,
    actor: Runner,
    response: Response,
    body: RunStartIn | None = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> RunOut:
    export = service.get(session=session, export_id=_named(session, name), actor=actor)
    return _trigger(
        session=session, runtime=runtime, actor=actor, export=export, body=body, key=idempotency_key,
        response=response,
    )  # fmt: skip


def _named(session: Session, name: str) -> int:
    found = session.scalar(sa.select(Export.id).where(Export.name == name))
    if found is None:
        raise NotFound(f"there is no export named {name!r}", field="name")
    return found


@router.get("/{export_id}/runs", summary="The export's runs, newest first")
def list_export_runs(
    export_id: int, session: SessionDep, runtime: RuntimeDep, actor: RunViewer, page: KeyPageDep
) -> Page[RunOut]:
    service.get(session=session, export_id=export_id, actor=actor)
    query = views.run_query(actor=actor, export_id=export_id)
    found, total, after = by_key(session, query, page, [Run.id], lambda run: (run.id,), [key_int])
    items = views.run_outs(session, found, now=runtime.clock())
    return Page(items=items, total=total, limit=page.limit, offset=page.offset, next_cursor=after)
