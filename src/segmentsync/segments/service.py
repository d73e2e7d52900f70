"""Segments: create, edit, delete, list, refresh (member count with history), preview, count.

Every function is keyword-only and takes the session, the profile source and the acting user
explicitly; changes are recorded in the audit log in the caller's transaction. Rules are checked
against the profile table's columns when saved (unknown columns, type mismatches → Invalid); a
SQL segment's query is checked (:mod:`segmentsync.segments.sql`) and must return the profile key;
a dbt segment's model must be in the manifest and its relation must hold the profile key. Every
kind is counted, previewed, refreshed and exported alike (:mod:`segmentsync.segments.kinds`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.auth import audit
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action, check
from segmentsync.connections.models import Connection
from segmentsync.db import id_from_text, same_name
from segmentsync.errors import N_, Conflict, Forbidden, Invalid, NotFound, SegmentSyncError
from segmentsync.exports.grants import permission
from segmentsync.exports.models import Export, ExportSegment
from segmentsync.profiles.source import KeyQuery, ProfileSource
from segmentsync.segments import compile as compiler
from segmentsync.segments import kinds
from segmentsync.segments.models import Segment, SegmentRefresh
from segmentsync.segments.rules import Group
from segmentsync.segments.schemas import PreviewOut, RefreshOut, SegmentCreate, SegmentUpdate

PREVIEW_MAX = 1000


# ---------------------------------------------------------------- reading


def list_segments(*, session: Session) -> list[Segment]:
    return list(session.scalars(sa.select(Segment).order_by(Segment.name)))


def get(*, session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(
            "there is no segment with id %(segment_id)s",
            params={"segment_id": segment_id},
            code="segment_not_found",
        )
    return segment


def find(*, session: Session, ref: str) -> Segment:
    """A segment by its name (any case) or, failing that, by its id."""
    segment = session.scalar(sa.select(Segment).where(same_name(Segment.name, ref.strip())))
    if segment is None and (number := id_from_text(ref)) is not None:
        segment = session.get(Segment, number)
    if segment is None:
        raise NotFound(
            "there is no segment named %(ref)s", params={"ref": repr(ref)}, code="segment_not_found"
        )
    return segment


def rules_of(segment: Segment) -> Group:
    """A rule segment's rule (Invalid for the other kinds)."""
    if segment.kind != "rule" or segment.rules is None:
        raise Invalid(
            "segment %(segment_name)s is a %(kind)s segment, not a rule",
            params={"segment_name": repr(segment.name), "kind": segment.kind},
            code="not_a_rule",
        )
    return Group.model_validate(segment.rules)


def selection_of(*, session: Session, source: ProfileSource, segment: Segment) -> Group | KeyQuery:
    """What the profile source runs for this segment (its rule, or its query)."""
    return kinds.selections(session, source, [segment])[0]


def exports_using_each(*, session: Session, segment_ids: list[int]) -> dict[int, list[str]]:
    """Names of the exports that send each of these segments (one query for a whole list)."""
    found: dict[int, list[str]] = {segment_id: [] for segment_id in segment_ids}
    rows = session.execute(
        sa.select(ExportSegment.segment_id, Export.name)
        .join(Export, ExportSegment.export_id == Export.id)
        .where(ExportSegment.segment_id.in_(segment_ids))
        .order_by(Export.name)
    )
    for segment_id, name in rows:
        found[segment_id].append(name)
    return found


def exports_using(*, session: Session, segment_id: int) -> list[str]:
    """Names of the exports that send this segment."""
    return list(
        session.scalars(
            sa.select(Export.name)
            .join(ExportSegment, ExportSegment.export_id == Export.id)
            .where(ExportSegment.segment_id == segment_id)
            .order_by(Export.name)
        )
    )


def _check_exports_in_reach(session: Session, segment: Segment, actor: User, doing: str) -> None:
    """Refuse to change a segment that an export the actor may not edit sends.

    A contributor could otherwise change what an export on an admins-only connection sends
    (its rule to "everyone") and the admin's next run would send it.
    """
    rows = session.execute(
        sa.select(Export.name, Connection)
        .join(ExportSegment, ExportSegment.export_id == Export.id)
        .outerjoin(Connection, Connection.id == Export.connection_id)
        .where(ExportSegment.segment_id == segment.id)
        .order_by(Export.name)
    ).all()
    names = [name for name, connection in rows if permission(actor, connection) != "edit"]
    if names:
        raise Forbidden(
            "you may not %(doing)s segment %(segment_name)s: it is sent by export(s) you may not edit (their connections are for administrators): %(names)s; ask an admin",
            params={"doing": doing, "segment_name": repr(segment.name), "names": ", ".join(names)},
            code="segment_used_by_restricted_exports",
            details={"exports": names},
        )


def history(*, session: Session, segment_id: int, limit: int = 20) -> list[SegmentRefresh]:
    """The latest refreshes of a segment, newest first."""
    return list(
        session.scalars(
            sa.select(SegmentRefresh)
            .where(SegmentRefresh.segment_id == segment_id)
            .order_by(SegmentRefresh.started_at.desc(), SegmentRefresh.id.desc())
            .limit(limit)
        )
    )


# ---------------------------------------------------------------- changing


def create(
    *, session: Session, source: ProfileSource, segment_in: SegmentCreate, actor: User, ip: str | None = None
) -> Segment:
    check(actor, Action.SEGMENTS_EDIT)
    _check_name_free(session, segment_in.name)
    segment = Segment(name=segment_in.name, description=segment_in.description, created_by_id=actor.id)
    _define(session, source, segment, actor, rules=segment_in.rules, sql=segment_in.sql,
            dbt_model=segment_in.dbt_model)  # fmt: skip
    session.add(segment)
    session.flush()
    audit.record(
        session, actor=actor, action="segment.create", object_type="segment", object_id=segment.id,
        object_label=segment.name, after=_snapshot(segment), ip=ip,
    )  # fmt: skip
    return segment


def update(
    *,
    session: Session,
    source: ProfileSource,
    segment_id: int,
    segment_in: SegmentUpdate,
    actor: User,
    ip: str | None = None,
) -> Segment:
    """Change the fields given. A new rule forgets the old member count until the next refresh."""
    check(actor, Action.SEGMENTS_EDIT)
    segment = get(session=session, segment_id=segment_id)
    before = _snapshot(segment)
    current = {**before}
    if segment.kind == "rule" and segment.rules is not None:
        current["rules"] = rules_of(segment).model_dump(mode="json")
    if any(
        current.get(key) != value
        for key, value in segment_in.model_dump(exclude_none=True, mode="json").items()
    ):
        _check_exports_in_reach(session, segment, actor, N_("change"))
    if segment_in.name is not None and segment_in.name != segment.name:
        _check_name_free(session, segment_in.name, other_than=segment.id)
        segment.name = segment_in.name
    if segment_in.description is not None:
        segment.description = segment_in.description
    if segment_in.rules is not None or segment_in.sql is not None or segment_in.dbt_model is not None:
        definition = _definition(segment)
        _define(session, source, segment, actor, rules=segment_in.rules, sql=segment_in.sql,
                dbt_model=segment_in.dbt_model)  # fmt: skip
        if _definition(segment) != definition:
            segment.member_count = segment.last_refresh_at = segment.last_refresh_ms = None
            segment.last_refresh_error = None
    after = _snapshot(segment)
    if after != before:
        session.flush()
        audit.record(
            session, actor=actor, action="segment.update", object_type="segment", object_id=segment.id,
            object_label=segment.name, before=before, after=after, ip=ip,
        )  # fmt: skip
    return segment


def delete(*, session: Session, segment_id: int, actor: User, ip: str | None = None) -> None:
    """Remove a segment; refused while exports send it (the answer names them)."""
    check(actor, Action.SEGMENTS_EDIT)
    segment = get(session=session, segment_id=segment_id)
    _check_exports_in_reach(session, segment, actor, N_("remove"))
    users = exports_using(session=session, segment_id=segment_id)
    if users:
        raise Conflict(
            "segment %(segment_name)s is used by %(count)s export(s): %(names)s; remove it from those exports first",
            params={"segment_name": repr(segment.name), "count": len(users), "names": ", ".join(users)},
            code="segment_in_use",
            details={"exports": users},
        )
    audit.record(
        session, actor=actor, action="segment.delete", object_type="segment", object_id=segment.id,
        object_label=segment.name, before=_snapshot(segment), ip=ip,
    )  # fmt: skip
    session.delete(segment)
    session.flush()


def _check_name_free(session: Session, name: str, *, other_than: int | None = None) -> None:
    query = sa.select(Segment.id).where(same_name(Segment.name, name))
    if other_than is not None:
        query = query.where(Segment.id != other_than)
    if session.scalar(query) is not None:
        raise Conflict(
            "a segment named %(name)s exists already",
            params={"name": repr(name)},
            code="name_taken",
            field="name",
        )


def _define(
    session: Session,
    source: ProfileSource,
    segment: Segment,
    actor: User,
    *,
    rules: Group | None,
    sql: str | None,
    dbt_model: str | None,
) -> None:
    """Make the segment the kind given by the one definition given, checked."""
    if sql is not None:
        if not (segment.kind == "sql" and segment.sql == sql):
            kinds.check_may_write_sql(session, actor)
            kinds.check_returns_key(kinds.sql_query(sql, source), source)
        segment.kind, segment.sql, segment.rules, segment.dbt_model = "sql", sql, None, None
    elif dbt_model is not None:
        query = kinds.dbt_query(dbt_model, source, kinds.manifest(session))
        try:
            kinds.check_returns_key(query, source)
        except Invalid as exc:
            raise Invalid(
                exc.template, params=exc.params, code=exc.code, field="dbt_model", details=exc.details
            ) from None
        segment.kind, segment.dbt_model, segment.rules, segment.sql = "dbt", dbt_model, None, None
    elif rules is not None:
        new_rules = rules.model_dump(mode="json")
        if not (segment.kind == "rule" and segment.rules == new_rules):
            compiler.check(rules, source.table())
        segment.kind, segment.rules, segment.sql, segment.dbt_model = "rule", new_rules, None, None


def _definition(segment: Segment) -> tuple[Any, ...]:
    return (segment.kind, segment.rules, segment.sql, segment.dbt_model)


def _snapshot(segment: Segment) -> dict[str, Any]:
    kind = segment.kind or "rule"
    found: dict[str, Any] = {"name": segment.name, "description": segment.description}
    if kind == "rule":
        found["rules"] = segment.rules
    else:
        found["kind"] = kind
        found["sql" if kind == "sql" else "dbt_model"] = segment.sql if kind == "sql" else segment.dbt_model
    return found


# ---------------------------------------------------------------- refreshing


def refresh(
    *,
    session: Session,
    source: ProfileSource,
    segment_id: int,
    actor: User | None,
    now: datetime | None = None,
    ip: str | None = None,
) -> RefreshOut:
    """Count the members now and store it (on the segment and in its history).

    A failure (rule no longer fits the table, engine unreachable) is stored too and returned in
    ``RefreshOut.error`` instead of raised, so that the caller's transaction keeps the record.
    ``actor`` None: the system (scheduler).
    """
    return refresh_many(
        session=session, source=source, segment_ids=[segment_id], actor=actor, now=now, ip=ip
    )[0]


def refresh_many(
    *,
    session: Session,
    source: ProfileSource,
    segment_ids: Sequence[int] | None,
    actor: User | None,
    now: datetime | None = None,
    ip: str | None = None,
) -> list[RefreshOut]:
    """Refresh several segments (None: all) with one scan of the profile table."""
    if actor is not None:
        check(actor, Action.SEGMENTS_EDIT)
    if segment_ids is None:
        segments = list_segments(session=session)
    else:
        segments = [get(session=session, segment_id=segment_id) for segment_id in segment_ids]
    moment = now or datetime.now(UTC)
    started = time.perf_counter()
    counts, errors = _count_all(session, source, segments, moment)
    elapsed_ms = int((time.perf_counter() - started) * 1000)
    results = [
        _store(session, segment, moment, elapsed_ms, counts.get(segment.id), errors.get(segment.id))
        for segment in segments
    ]
    if actor is not None:
        for result in results:
            audit.record(
                session, actor=actor, action="segment.refresh", object_type="segment",
                object_id=result.segment_id, object_label=result.segment_name,
                after={"member_count": result.member_count, "error": result.error}, ip=ip,
            )  # fmt: skip
    session.flush()
    return results


def record_refresh(
    *,
    session: Session,
    source: ProfileSource,
    segment_id: int,
    rules: Group | None = None,
    now: datetime | None = None,
    counted: tuple[int, int] | None = None,
) -> RefreshOut:
    """Count one segment and store it; raises on failure (for the run engine and the scheduler).

    ``rules`` may be given when the caller has parsed them already; ``counted``, (count,
    milliseconds), when the caller has counted it already (the run engine: with its union).
    """
    segment = get(session=session, segment_id=segment_id)
    moment = now or datetime.now(UTC)
    if counted is None:
        rule = rules or selection_of(session=session, source=source, segment=segment)
        started = time.perf_counter()
        (count,) = source.counts([rule], now=moment)
        counted = count, int((time.perf_counter() - started) * 1000)
    return _store(session, segment, moment, counted[1], counted[0], None)


def _count_all(
    session: Session, source: ProfileSource, segments: list[Segment], now: datetime
) -> tuple[dict[int, int], dict[int, str]]:
    """Counts by segment id, and errors by segment id for the segments that could not be counted."""
    errors: dict[int, str] = {}
    good: list[tuple[Segment, Group | KeyQuery]] = []
    try:
        table = source.table()
    except SegmentSyncError as exc:
        return {}, {segment.id: exc.message for segment in segments}
    for segment in segments:
        try:
            rule = selection_of(session=session, source=source, segment=segment)
            if isinstance(rule, Group):
                compiler.check(rule, table)
        except (SegmentSyncError, ValueError) as exc:
            errors[segment.id] = exc.message if isinstance(exc, SegmentSyncError) else str(exc)
        else:
            good.append((segment, rule))
    if not good:
        return {}, errors
    rules = [(segment, rule) for segment, rule in good if isinstance(rule, Group)]
    queries = [(segment, rule) for segment, rule in good if isinstance(rule, KeyQuery)]
    found: dict[int, int] = {}
    for segment, query in queries:  # each on its own: one failing query fails only its segment
        try:
            (found[segment.id],) = source.counts([query], now=now)
        except SegmentSyncError as exc:
            errors[segment.id] = exc.message
    good = list(rules)
    if not good:
        return found, errors
    try:
        counts = source.counts([rule for _, rule in good], now=now)
    except Exception as exc:  # the engine's own error (down, table changed): stored, not raised
        message = exc.message if isinstance(exc, SegmentSyncError) else f"{exc.__class__.__name__}: {exc}"
        return found, errors | {segment.id: message for segment, _ in good}
    return found | {segment.id: count for (segment, _), count in zip(good, counts, strict=True)}, errors


def _store(
    session: Session,
    segment: Segment,
    moment: datetime,
    elapsed_ms: int,
    count: int | None,
    error: str | None,
) -> RefreshOut:
    session.add(
        SegmentRefresh(
            segment_id=segment.id, started_at=moment, duration_ms=elapsed_ms, member_count=count, error=error
        )
    )
    segment.last_refresh_error = error
    if error is None:
        segment.member_count = count
        segment.last_refresh_at = moment
        segment.last_refresh_ms = elapsed_ms
    return RefreshOut(
        segment_id=segment.id, segment_name=segment.name, started_at=moment, duration_ms=elapsed_ms,
        member_count=count, error=error,
    )  # fmt: skip


# ---------------------------------------------------------------- looking at members


def count(*, session: Session, source: ProfileSource, segment_id: int, now: datetime | None = None) -> int:
    """The member count now (not stored; see :func:`refresh`)."""
    segment = get(session=session, segment_id=segment_id)
    return count_rule(
        source=source, rule=selection_of(session=session, source=source, segment=segment), now=now
    )


def count_rule(*, source: ProfileSource, rule: Group | KeyQuery, now: datetime | None = None) -> int:
    """The member count of a rule that need not be saved (the rule builder's live count)."""
    return source.count(source.segment(rule, now=now))


def preview(
    *,
    session: Session,
    source: ProfileSource,
    segment_id: int,
    columns: Sequence[str] | None = None,
    limit: int = 20,
    now: datetime | None = None,
) -> PreviewOut:
    """The first ``limit`` members (by key) with ``columns`` (default: all)."""
    segment = get(session=session, segment_id=segment_id)
    selection = selection_of(session=session, source=source, segment=segment)
    out = preview_rule(source=source, rule=selection, columns=columns, limit=limit, now=now)
    return out.model_copy(update={"segment_id": segment.id})


def preview_rule(
    *,
    source: ProfileSource,
    rule: Group | KeyQuery,
    columns: Sequence[str] | None = None,
    limit: int = 20,
    now: datetime | None = None,
) -> PreviewOut:
    if not 1 <= limit <= PREVIEW_MAX:
        raise Invalid("limit must be between 1 and %(max)s", params={"max": PREVIEW_MAX}, field="limit")
    selected = source.members([rule], list(columns or source.columns()), now=now)
    rows = source.preview(selected, limit=limit).to_pylist()
    return PreviewOut(segment_id=None, columns=list(selected.columns), rows=rows, limit=limit)


def check_sql(*, session: Session, source: ProfileSource, sql: str, actor: User) -> list[str]:
    """Check a SQL segment's query as saving would (the SQL tab's "Check"): its columns."""
    kinds.check_may_write_sql(session, actor)
    return kinds.check_returns_key(kinds.sql_query(sql, source), source)


def sql_selection(*, session: Session, source: ProfileSource, sql: str, actor: User) -> KeyQuery:
    """A query not saved yet, checked, for its count and preview (the SQL tab's "Run preview")."""
    kinds.check_may_write_sql(session, actor)
    query = kinds.sql_query(sql, source)
    kinds.check_returns_key(query, source)
    return query
