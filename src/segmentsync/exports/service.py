"""Exports: create, edit, duplicate, detach, attach, remove, list, run and run all (docs/exports-and-runs.md).

Every function checks the policy table and the export's connection (:mod:`exports.grants`),
takes the session explicitly and records an audit entry for every change. **Saving never runs
the export.**

Saving happens in three steps because the platform is asked about the list in the middle, and
no metadata-store transaction may stay open while the platform is called (a token refresh
commits in its own; on SQLite that needs the write lock): ``draft_create`` / ``draft_update``
(in a session) → :func:`checks.check_platform` (no session) → ``save_new`` / ``save_changes``
(in a session). :func:`create`, :func:`update` and :func:`attach` do the three steps, each in
its own short transaction; call them while holding no transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from segmentsync.auth import audit
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action, check
from segmentsync.db import transaction, utcnow
from segmentsync.errors import N_, Conflict, Invalid
from segmentsync.exports import checks, runs
from segmentsync.exports.models import (
    ACTIVE_STATUSES,
    Delivered,
    Export,
    ExportSegment,
    Run,
    RunStatus,
    ScheduleMode,
)
from segmentsync.exports.records import (
    audited,
    connection_of,
    find,
    get,
    permission_on,
    require_edit_on,
    segment_ids,
)
from segmentsync.exports.schemas import ExportCreate, ExportUpdate
from segmentsync.runtime import Runtime

__all__ = [  # reading lives in records.py; this module is the one to import
    "Saved",
    "attach",
    "audited",
    "connection_of",
    "create",
    "detach",
    "draft_create",
    "draft_update",
    "duplicate",
    "find",
    "form_of",
    "get",
    "has_active_schedule",
    "permission_on",
    "remove",
    "run",
    "run_all",
    "save_changes",
    "save_new",
    "segment_ids",
    "update",
]  # fmt: skip
OBJECT = "export"
PLATFORM_FIELDS = ("connection_id", "list_id", "attributes", "create_missing_fields")
MAX_NAME = 200


@dataclass
class Saved:
    """A saved export and what the save found out (for the answer)."""

    export_id: int
    members: int | None = None
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- creating and editing


def _check_name_free(session: Session, name: str, *, except_id: int | None = None) -> None:
    query = sa.select(Export.id).where(Export.name == name)
    if except_id is not None:
        query = query.where(Export.id != except_id)
    if session.scalar(query) is not None:
        raise Conflict(
            "an export named %(name)s already exists",
            params={"name": repr(name)},
            code="name_taken",
            field="name",
        )


def form_of(values: dict[str, Any]) -> ExportCreate:
    """The export form from stored and sent values; Invalid if it does not fit, listing every
    problem (``details.errors``: pydantic's ``loc``, ``type``, ``msg`` and ``ctx`` of each)."""
    try:
        return ExportCreate.model_validate(values)
    except ValidationError as exc:
        found = [
            {"loc": list(error["loc"]), "type": error["type"], "msg": error["msg"],
             "ctx": {k: v for k, v in (error.get("ctx") or {}).items() if isinstance(v, str | int | float)}}
            for error in exc.errors(include_url=False, include_input=False)
        ]  # fmt: skip
        field = ".".join(str(part) for part in found[0]["loc"])
        raise Invalid(
            "%(field)s: %(problem)s",
            params={"field": field, "problem": "; ".join(str(error["msg"]) for error in found)},
            field=field,
            details={"errors": found},
        ) from None


def draft_create(*, session: Session, runtime: Runtime, data: ExportCreate, actor: User) -> checks.Draft:
    check(actor, Action.EXPORTS_EDIT)
    draft = checks.draft(session=session, runtime=runtime, data=data, actor=actor)
    _check_name_free(session, draft.values["name"])
    return draft


def draft_update(
    *, session: Session, runtime: Runtime, export: Export, changes: ExportUpdate, actor: User
) -> checks.Draft:
    """The export with ``changes`` applied, checked as a whole (the platform only if needed)."""
    require_edit_on(session, export, actor)
    sent = changes.model_dump(exclude_unset=True)
    before = audited(session, export)
    if export.connection_id is None and "connection_id" not in sent:
        raise Conflict(
            "the export “%(export_name)s” has no connection: attach one first",
            params={"export_name": export.name},
            code="no_connection",
        )
    merged = form_of({**before, **sent})
    draft = checks.draft(session=session, runtime=runtime, data=merged, actor=actor)
    _check_name_free(session, draft.values["name"], except_id=export.id)
    draft.needs_platform = any(draft.values[name] != before[name] for name in PLATFORM_FIELDS)
    if not draft.needs_platform:
        draft.values["attributes"] = before["attributes"]  # as the platform named them
        draft.values["list_name"] = export.list_name
    return draft


def save_new(*, session: Session, draft: checks.Draft, actor: User, ip: str | None = None) -> Saved:
    _check_name_free(session, draft.values["name"])
    export = Export(**draft.values, created_by_id=actor.id)
    _write(session, export, draft.segment_ids, add=True)
    audit.record(
        session, actor=actor, action="export.create", object_type=OBJECT, object_id=export.id,
        object_label=export.name, after=audited(session, export), ip=ip,
    )  # fmt: skip
    return Saved(export.id, draft.members, list(draft.warnings))


def save_changes(
    *, session: Session, export: Export, draft: checks.Draft, actor: User, ip: str | None = None
) -> Saved:
    before = audited(session, export)
    for name, value in draft.values.items():
        setattr(export, name, value)
    export.updated_at = utcnow()
    _write(session, export, draft.segment_ids)
    if (before["list_id"], before["connection_id"]) != (export.list_id, export.connection_id):
        # What was delivered went to another list or account: the next run sends everyone.
        session.execute(sa.delete(Delivered).where(Delivered.export_id == export.id))
    after = audited(session, export)
    action = "export.attach" if before["connection_id"] is None and export.connection_id else "export.update"
    audit.record(
        session, actor=actor, action=action, object_type=OBJECT, object_id=export.id,
        object_label=export.name, before=before, after=after, ip=ip,
    )  # fmt: skip
    return Saved(export.id, draft.members, list(draft.warnings))


def _write(session: Session, export: Export, segments: list[int], *, add: bool = False) -> None:
    try:
        with session.begin_nested():
            if add:
                session.add(export)
            session.flush()
            _set_segments(session, export.id, segments)
    except IntegrityError as exc:  # the name was taken (or a segment removed) meanwhile
        raise Conflict(
            "the export “%(export_name)s” could not be saved: its name is taken, or its connection or a segment was removed meanwhile; try again",
            params={"export_name": export.name},
            code="save_conflict",
        ) from exc


def _set_segments(session: Session, export_id: int, wanted: list[int]) -> None:
    current = set(segment_ids(session, export_id))
    gone = current - set(wanted)
    if gone:
        session.execute(
            sa.delete(ExportSegment).where(
                ExportSegment.export_id == export_id, ExportSegment.segment_id.in_(gone)
            )
        )
    session.add_all(
        ExportSegment(export_id=export_id, segment_id=sid) for sid in wanted if sid not in current
    )
    session.flush()


def create(*, runtime: Runtime, data: ExportCreate, actor: User, ip: str | None = None) -> Saved:
    """Check, ask the platform, save (three short transactions; hold none when calling this)."""
    with transaction(runtime.sessions) as session:
        draft = draft_create(session=session, runtime=runtime, data=data, actor=actor)
    checks.check_platform(runtime=runtime, draft=draft)
    with transaction(runtime.sessions) as session:
        return save_new(session=session, draft=draft, actor=actor, ip=ip)


def update(
    *, runtime: Runtime, export_id: int, changes: ExportUpdate, actor: User, ip: str | None = None
) -> Saved:
    """Edit an export (the platform is asked again only if the connection, list or fields changed)."""
    with transaction(runtime.sessions) as session:
        export = get(session=session, export_id=export_id, actor=actor)
        draft = draft_update(session=session, runtime=runtime, export=export, changes=changes, actor=actor)
    if draft.needs_platform:
        checks.check_platform(runtime=runtime, draft=draft)
    with transaction(runtime.sessions) as session:
        export = get(session=session, export_id=export_id, actor=actor)
        require_edit_on(session, export, actor)
        return save_changes(session=session, export=export, draft=draft, actor=actor, ip=ip)


# ---------------------------------------------------------------- connection: detach and attach


def detach(*, session: Session, export: Export, actor: User, ip: str | None = None) -> Export:
    """The export is kept, inactive, with "No connection"; attach one to use it again."""
    require_edit_on(session, export, actor)
    if export.connection_id is None:
        raise Conflict(
            "the export “%(export_name)s” has no connection already",
            params={"export_name": export.name},
            code="no_connection",
        )
    _refuse_while_active(session, export, N_("detaching its connection"))
    before = audited(session, export)
    export.connection_id = None
    export.updated_at = utcnow()
    session.flush()
    audit.record(
        session, actor=actor, action="export.detach", object_type=OBJECT, object_id=export.id,
        object_label=export.name, before=before, after=audited(session, export), ip=ip,
    )  # fmt: skip
    return export


def attach(
    *, runtime: Runtime, export_id: int, connection_id: int, actor: User, ip: str | None = None
) -> Saved:
    """Give the export a connection (of its platform); its list is checked on that connection."""
    with transaction(runtime.sessions) as session:
        export = get(session=session, export_id=export_id, actor=actor)
        connection = checks.usable_connection(session, connection_id, actor)
        wanted = checks.list_type(export.list_id)
        if wanted is not None and connection.type is not wanted:
            raise Invalid(
                "the export “%(export_name)s” sends to a %(platform)s list; attach a %(platform)s connection",
                params={
                    "export_name": export.name,
                    "platform": checks.TITLES[wanted],
                },
                code="wrong_platform",
                field="connection_id",
            )
        _refuse_while_active(session, export, N_("changing its connection"))
    return update(
        runtime=runtime,
        export_id=export_id,
        changes=ExportUpdate(connection_id=connection_id),
        actor=actor,
        ip=ip,
    )


def _refuse_while_active(session: Session, export: Export, doing: str) -> None:
    running = runs.active_run(session, export.id)
    if running is not None:
        raise Conflict(
            "the export “%(export_name)s” has an active run (#%(running_id)s); cancel it or wait before %(doing)s",
            params={"export_name": export.name, "running_id": running.id, "doing": doing},
            code="run_active",
            details={"run_id": running.id},
        )


# ---------------------------------------------------------------- duplicate and remove


def duplicate(
    *,
    session: Session,
    runtime: Runtime,
    export: Export,
    actor: User,
    name: str | None = None,
    ip: str | None = None,
) -> Saved:
    """A copy of the export's settings ("Copy of …"); no runs, nothing delivered yet."""
    require_edit_on(session, export, actor)
    if export.connection_id is None:
        raise Conflict(
            "the export “%(export_name)s” has no connection: attach one first",
            params={"export_name": export.name},
            code="no_connection",
        )
    values = audited(session, export)
    values["name"] = name.strip() if name else copy_name(session, export.name)
    draft = draft_create(session=session, runtime=runtime, data=form_of(values), actor=actor)
    draft.values["attributes"] = [dict(item) for item in export.attributes]  # as the platform named them
    draft.values["list_name"] = export.list_name
    saved = save_new(session=session, draft=draft, actor=actor, ip=ip)
    audit.record(
        session, actor=actor, action="export.duplicate", object_type=OBJECT, object_id=saved.export_id,
        object_label=values["name"], before={"source_id": export.id, "source": export.name}, ip=ip,
    )  # fmt: skip
    return saved


def copy_name(session: Session, name: str) -> str:
    """``Copy of <name>``, numbered if taken (the web form proposes it for *Duplicate*)."""
    base = f"Copy of {name}"[:MAX_NAME]
    taken = set(session.scalars(sa.select(Export.name).where(Export.name.startswith(base, autoescape=True))))
    if base not in taken:
        return base
    for number in range(2, 10_000):
        suffix = f" ({number})"
        candidate = base[: MAX_NAME - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
    raise Conflict("too many copies of this export; give the copy a name", field="name")


def remove(*, session: Session, export: Export, actor: User, ip: str | None = None) -> None:
    """Remove the export; its runs are kept (with its name), waiting runs are cancelled."""
    require_edit_on(session, export, actor)
    waiting = list(
        session.scalars(sa.select(Run).where(Run.export_id == export.id, Run.status.in_(ACTIVE_STATUSES)))
    )
    if any(run.status is RunStatus.RUNNING for run in waiting):
        raise Conflict(
            "the export “%(export_name)s” is running; cancel the run or wait before removing it",
            params={"export_name": export.name},
            code="run_active",
        )
    for run in [*waiting, *_awaiting(session, export.id)]:
        run.status = RunStatus.CANCELLED
        run.finished_at = utcnow()
        run.error = N_("cancelled: the export was removed")
    audit.record(
        session, actor=actor, action="export.remove", object_type=OBJECT, object_id=export.id,
        object_label=export.name, before=audited(session, export), ip=ip,
    )  # fmt: skip
    session.flush()
    session.execute(sa.delete(Delivered).where(Delivered.export_id == export.id))  # no foreign key
    session.delete(export)
    session.flush()


def _awaiting(session: Session, export_id: int) -> list[Run]:
    return list(
        session.scalars(
            sa.select(Run).where(Run.export_id == export_id, Run.status == RunStatus.AWAITING_CONFIRMATION)
        )
    )


# ---------------------------------------------------------------- running


def run(
    *, session: Session, export: Export, actor: User, dry_run: bool = False, full_resync: bool = False
) -> Run:
    """Run now (even with no active schedule); Conflict if a run is active."""
    return runs.start_run(
        session=session, export=export, actor=actor, dry_run=dry_run, full_resync=full_resync
    )


def has_active_schedule(export: Export) -> bool:
    return export.connection_id is not None and export.schedule_mode is not ScheduleMode.OFF


def run_all(
    *, session: Session, actor: User, ip: str | None = None
) -> tuple[list[Run], list[dict[str, Any]]]:
    """Run all: queue every export with an active schedule now; the others are listed with why."""
    check(actor, Action.EXPORTS_RUN)
    queued: list[Run] = []
    skipped: list[dict[str, Any]] = []
    exports = session.scalars(
        sa.select(Export).where(Export.schedule_mode != ScheduleMode.OFF, Export.connection_id.is_not(None))
        .order_by(Export.name)
    )  # fmt: skip
    for export in exports:
        if permission_on(session, export, actor) != "edit":
            skipped.append(
                {
                    "export_id": export.id,
                    "name": export.name,
                    "reason": N_("its connection is for administrators"),
                }
            )
            continue
        try:
            queued.append(run(session=session, export=export, actor=actor))
        except Conflict as exc:
            skipped.append({"export_id": export.id, "name": export.name, "reason": exc.message})
    audit.record(
        session, actor=actor, action="exports.run_all", object_type=OBJECT, object_label="run all",
        after={"queued": [r.id for r in queued], "skipped": [s["export_id"] for s in skipped]}, ip=ip,
    )  # fmt: skip
    return queued, skipped
