"""Exports and runs as users see them: the Data > Exports list, one export, one run, run rows.

Lists are built for a whole page at once (one query per kind of related object), never one
query per row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, load_only

from segmentsync.auth.models import User
from segmentsync.auth.policy import Action, check
from segmentsync.connections.models import Connection, ConnectionType
from segmentsync.db import contains
from segmentsync.errors import Invalid
from segmentsync.exports import checks, run_rows, runs
from segmentsync.exports.grants import permission
from segmentsync.exports.models import ACTIVE_STATUSES, Export, ExportSegment, Run, ScheduleMode
from segmentsync.exports.run_rows import FORMULA_START
from segmentsync.exports.schemas import (
    AttributeMap,
    ConnectionRef,
    Consent,
    ExportOut,
    ExportRow,
    ProgressOut,
    RunCounts,
    RunOut,
    RunRowOut,
    RunSummary,
    SegmentRef,
)
from segmentsync.runtime import Runtime
from segmentsync.scheduling import schedule
from segmentsync.segments.models import Segment

# Unchanged members' lines (email<TAB>key) that need no quoting nor defusing become CSV lines by
# replacing bytes; any line with a quote, a comma, a carriage return or a formula start goes the
# csv module's way.
_CAREFUL = (b'"', b",", b"\r", *(sep + start.encode() for sep in (b"\n", b"\t") for start in FORMULA_START))


def _plain_lines(data: bytes) -> bool:
    """True if no line needs quoting or defusing (substring searches: fast, unlike one regex)."""
    return data[:1].decode(errors="replace") not in FORMULA_START and not any(
        part in data for part in _CAREFUL
    )


_UNCHANGED_END = b",unchanged,unchanged,,\r\n"
CSV_BYTES = 1 << 20  # the download is written out a megabyte at a time
SORTS = ("name", "connection", "type", "schedule", "last_run", "created", "updated")
COUNT_FIELDS = ("profiles", "invalid", "new", "updated", "unchanged", "removed", "rejected", "skipped")


# ---------------------------------------------------------------- the exports list


def export_query(
    *, actor: User, search: str | None = None, sort: str = "name", connection_id: int | None = None
) -> sa.Select[Export]:
    """Exports matching ``search`` (name, list name or ID, or connection), sorted by ``sort`` ("-name": descending)."""
    check(actor, Action.EXPORTS_VIEW)
    key = sort.removeprefix("-")
    if key not in SORTS:
        raise Invalid(
            "cannot sort by %(key)s; choose one of %(names)s",
            params={"key": repr(key), "names": ", ".join(SORTS)},
            field="sort",
        )
    query = sa.select(Export).outerjoin(Connection, Connection.id == Export.connection_id)
    last_run: Any = None
    if key == "last_run":  # only then: it groups a year of runs (73,000 at 200 daily exports)
        last_run = (
            sa.select(Run.export_id, sa.func.max(Run.id).label("last_id")).group_by(Run.export_id).subquery()
        )
        query = query.outerjoin(last_run, last_run.c.export_id == Export.id)
    if search and search.strip():
        query = query.where(
            sa.or_(
                contains(Export.name, search),
                contains(Export.list_name, search),
                contains(Export.list_id, search),
                contains(Connection.name, search),
            )
        )
    if connection_id is not None:
        query = query.where(Export.connection_id == connection_id)
    column: Any = {
        "name": Export.name,
        "connection": Connection.name,
        "type": Connection.type,
        "schedule": Export.schedule_mode,
        "last_run": last_run.c.last_id if last_run is not None else None,
        "created": Export.created_at,
        "updated": Export.updated_at,
    }[key]
    order = column.desc().nulls_last() if sort.startswith("-") else column.asc().nulls_last()
    return query.order_by(order, Export.id)


def export_type(export: Export, connection: Connection | None) -> ConnectionType:
    if connection is not None:
        return connection.type
    return checks.list_type(export.list_id) or ConnectionType.CAMPAIGN_MONITOR


def describe_schedule(export: Export) -> str:
    if export.schedule_mode is ScheduleMode.SYSTEM:
        return "With system refresh"
    if export.schedule_mode is ScheduleMode.CRON:
        return f"Custom: {export.cron} ({export.timezone})"
    return "Off"


SUMMARY_COLUMNS = (
    Run.id,
    Run.export_id,
    Run.status,
    Run.trigger,
    Run.dry_run,
    Run.created_at,
    Run.finished_at,
    Run.error,
)


def run_summary(run: Run | None) -> RunSummary | None:
    if run is None:
        return None
    return RunSummary(
        id=run.id,
        status=run.status,
        trigger=run.trigger,
        dry_run=run.dry_run,
        created_at=run.created_at,
        finished_at=run.finished_at,
        error=run.error,
    )


def _status(export: Export, active: Run | None, last: Run | None) -> str:
    if export.connection_id is None:
        return "no_connection"
    run = active or last
    return run.status.value if run is not None else "never_run"


class _Related:
    """The connections, last runs and active runs of a page of exports (one query each)."""

    def __init__(self, session: Session, exports: Sequence[Export]) -> None:
        ids = [e.id for e in exports]
        connection_ids = {e.connection_id for e in exports if e.connection_id is not None}
        self.connections = {
            c.id: c for c in session.scalars(sa.select(Connection).where(Connection.id.in_(connection_ids)))
        }
        # Each export's newest run by a seek in ix_runs_export_id_id: grouping the runs of 50
        # exports read a year of them (18,000 rows, 5-6 ms of PostgreSQL per page).
        newest = (
            sa.select(Run.id)
            .where(Run.export_id == Export.id)
            .order_by(Run.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        last_ids = sa.select(newest).where(Export.id.in_(ids))
        # the columns a summary shows, not a run's 40 (its plan JSON, parsed, among them): the
        # exports list's CPU went mostly here
        summary = load_only(*SUMMARY_COLUMNS)
        self.last = {
            r.export_id: r
            for r in session.scalars(sa.select(Run).where(Run.id.in_(last_ids)).options(summary))
        }
        active = (
            sa.select(Run).where(Run.export_id.in_(ids), Run.status.in_(ACTIVE_STATUSES)).options(summary)
        )
        self.active = {r.export_id: r for r in session.scalars(active)}

    def connection(self, export: Export) -> Connection | None:
        return self.connections.get(export.connection_id) if export.connection_id is not None else None


def export_rows(session: Session, exports: Sequence[Export], actor: User) -> list[ExportRow]:
    related = _Related(session, exports)
    rows = []
    for export in exports:
        connection = related.connection(export)
        last = related.last.get(export.id)
        rows.append(
            ExportRow(
                id=export.id,
                name=export.name,
                connection=connection.name if connection else None,
                connection_id=export.connection_id,
                type=export_type(export, connection),
                status=_status(export, related.active.get(export.id), last),
                permission=permission(actor, connection),
                schedule=describe_schedule(export),
                last_run=run_summary(last),
                connection_used=connection.name if connection else "No connection",
            )
        )
    return rows


# ---------------------------------------------------------------- one export


def _segments(session: Session, export_id: int) -> list[SegmentRef]:
    found = session.scalars(
        sa.select(Segment)
        .join(ExportSegment, ExportSegment.segment_id == Segment.id)
        .where(ExportSegment.export_id == export_id)
        .order_by(Segment.name)
    )
    return [
        SegmentRef(id=s.id, name=s.name, member_count=s.member_count, last_refresh_at=s.last_refresh_at)
        for s in found
    ]


def next_run_at(session: Session, export: Export, now: datetime) -> datetime | None:
    if export.connection_id is None:
        return None
    if export.schedule_mode is ScheduleMode.CRON and export.cron:
        return schedule.cron_next(export.cron, export.timezone, now)
    if export.schedule_mode is ScheduleMode.SYSTEM:
        upcoming = schedule.next_occurrences(schedule.spec_of(schedule.load(session)), now, 1)
        return upcoming[0] if upcoming else None
    return None


def export_out(
    session: Session,
    export: Export,
    actor: User,
    *,
    now: datetime,
    members: int | None = None,
    warnings: list[str] | None = None,
) -> ExportOut:
    related = _Related(session, [export])
    connection = related.connection(export)
    active, last = related.active.get(export.id), related.last.get(export.id)
    creator = session.get(User, export.created_by_id) if export.created_by_id else None
    ref = None
    if connection is not None:
        ref = ConnectionRef(
            id=connection.id, name=connection.name, type=connection.type, status=connection.status
        )
    return ExportOut(
        id=export.id,
        name=export.name,
        connection=ref,
        type=export_type(export, connection),
        list_id=export.list_id,
        list_name=export.list_name,
        email_column=export.email_column,
        attributes=[AttributeMap.model_validate(item) for item in export.attributes],
        create_missing_fields=export.create_missing_fields,
        consent_to_track=cast(Consent, export.consent_to_track),  # one of them: checked on save
        consent_column=export.consent_column,
        segments=_segments(session, export.id),
        sync_mode=export.sync_mode,
        removal_mode=export.removal_mode,
        resubscribe=export.resubscribe,
        schedule_mode=export.schedule_mode,
        cron=export.cron,
        timezone=export.timezone,
        schedule=describe_schedule(export),
        next_run_at=next_run_at(session, export, now),
        status=_status(export, active, last),
        permission=permission(actor, connection),
        active_run=run_summary(active),
        last_run=run_summary(last),
        created_by=creator.email if creator else None,
        created_at=export.created_at,
        updated_at=export.updated_at,
        members=members,
        warnings=warnings or [],
    )


# ---------------------------------------------------------------- runs


def run_query(
    *,
    actor: User,
    export_id: int | None = None,
    status: str | None = None,
    trigger: str | None = None,
    dry_run: bool | None = None,
) -> sa.Select[Run]:
    """Runs, newest first, filtered by export, status (comma-separated), trigger or dry run."""
    check(actor, Action.RUNS_VIEW)
    query = sa.select(Run).order_by(Run.id.desc())
    if export_id is not None:
        query = query.where(Run.export_id == export_id)
    if status:
        query = query.where(Run.status.in_([part.strip() for part in status.split(",") if part.strip()]))
    if trigger:
        query = query.where(Run.trigger == trigger)
    if dry_run is not None:
        query = query.where(Run.dry_run.is_(dry_run))
    return query


def run_outs(session: Session, found: Sequence[Run], *, now: datetime) -> list[RunOut]:
    user_ids = {r.triggered_by_id for r in found if r.triggered_by_id is not None}
    emails = (
        dict(session.execute(sa.select(User.id, User.email).where(User.id.in_(user_ids))).all())
        if user_ids
        else {}  # scheduled runs only: no query
    )
    return [run_out(r, now=now, triggered_by=emails.get(r.triggered_by_id or -1)) for r in found]


def run_out(run: Run, *, now: datetime, triggered_by: str | None) -> RunOut:
    end = run.finished_at or (now if run.started_at else None)
    return RunOut(
        id=run.id,
        export_id=run.export_id,
        export_name=run.export_name,
        trigger=run.trigger,
        triggered_by=triggered_by,
        scheduled_for=run.scheduled_for,
        dry_run=run.dry_run,
        full_resync=run.full_resync,
        status=run.status,
        cancel_requested=run.cancel_requested,
        cancelling=runs.cancelling(run),
        attempt=run.attempt,
        next_attempt_at=run.next_attempt_at,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_seconds=(end - run.started_at).total_seconds() if end and run.started_at else None,
        counts=RunCounts(**{name: getattr(run, name) or 0 for name in COUNT_FIELDS}),
        progress=ProgressOut.model_validate(runs.progress(run, now)),
        plan=run.plan,
        error_code=run.error_code,
        error=run.error,
    )


def csv_chunks(runtime: Runtime, run_id: int, *, email: str | None, outcome: str | None) -> Iterator[str]:
    """The CSV (header first) a chunk of rows at a time (10,000 rows of ``run_members`` — as lines
    the database wrote where nothing needs quoting or defusing, else their cells made by the
    database — or a block of the unchanged members), each read in a short read-only session."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(runs.CSV_COLUMNS)
    where = run_rows.Filter.of(email, outcome)
    for chunk in run_rows.plain_rows(runtime.readers, run_id, where, cells=True):
        if isinstance(chunk, run_rows.CsvText):  # the database wrote the lines; nothing to quote
            buffer.write(chunk.text)
            if buffer.tell() >= CSV_BYTES:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
            continue
        if isinstance(chunk, run_rows.UnchangedLines):
            if _plain_lines(chunk.data):  # nothing to quote or defuse: bytes operations
                buffer.write(chunk.data.replace(b"\t", b",").replace(b"\n", _UNCHANGED_END).decode())
                buffer.write(_UNCHANGED_END.decode())
                if buffer.tell() >= CSV_BYTES:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
                continue
            chunk = chunk.cells()
        writer.writerows(chunk)
        if buffer.tell() >= CSV_BYTES:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def row_out(member: run_rows.Row) -> RunRowOut:
    return RunRowOut(
        seq=member.seq,
        email=member.email,
        profile_key=member.profile_key,
        action=member.action,
        outcome=member.outcome,
        code=member.code,
        message=member.message,
    )
