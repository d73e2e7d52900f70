"""The three kinds of segment and what each selects: ``rule`` (a rule over the profile table's
columns), ``sql`` (a query returning profile keys) and ``dbt`` (a dbt model's relation).

:func:`selections` turns segments into what the profile source runs (a rule, or a
:class:`~segmentsync.profiles.source.KeyQuery`); a SQL segment's query is checked again every time
(:mod:`segmentsync.segments.sql`), and a dbt segment's relation is read from the manifest every
time, so that a renamed relation is followed. The segment options (one row) hold the manifest's
location and whether only admins may write SQL segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sqlalchemy.orm import Session

from segmentsync.auth import audit
from segmentsync.auth.models import Role, User
from segmentsync.auth.policy import Action, check
from segmentsync.dbt import manifest as dbt
from segmentsync.errors import Forbidden, Invalid
from segmentsync.profiles.source import KeyQuery, ProfileSource
from segmentsync.segments import sql as sqlcheck
from segmentsync.segments.models import Segment, SegmentOptions
from segmentsync.segments.rules import Group

Kind = Literal["rule", "sql", "dbt"]
KINDS: tuple[Kind, ...] = ("rule", "sql", "dbt")


def options(session: Session) -> SegmentOptions:
    """The segment options (created with their defaults on first use)."""
    found = session.get(SegmentOptions, 1)
    if found is None:
        found = SegmentOptions(id=1, dbt_manifest=None, sql_admins_only=False)
        session.add(found)
        session.flush()
    return found


def check_may_write_sql(session: Session, actor: User) -> None:
    """The policy row ``segments.sql``, narrowed to admins when an admin has said so."""
    check(actor, Action.SEGMENTS_SQL)
    if options(session).sql_admins_only and actor.role is not Role.ADMIN:
        raise Forbidden(
            "only admins may write SQL segments here (an admin has restricted it); ask an admin, or "
            "use a rule or a dbt model",
            code="sql_segments_admins_only",
            details={"action": Action.SEGMENTS_SQL.value, "role": actor.role.value},
        )


def set_sql_admins_only(*, session: Session, actor: User, value: bool, ip: str | None = None) -> None:
    check(actor, Action.SEGMENTS_SETTINGS)
    row = options(session)
    before = row.sql_admins_only
    row.sql_admins_only = value
    _audit(session, actor, "sql_admins_only", before, value, ip)


def set_manifest(
    *, session: Session, actor: User, location: str | None, ip: str | None = None
) -> dbt.Manifest | None:
    """Store the manifest's location (None: none) once it reads as a dbt manifest."""
    check(actor, Action.SEGMENTS_SETTINGS)
    row = options(session)
    before = row.dbt_manifest
    manifest = None
    if location is not None:
        location = dbt.check_location(location)
        manifest = dbt.load(location)
    row.dbt_manifest = location
    _audit(session, actor, "dbt_manifest", before, location, ip)
    return manifest


def _audit(session: Session, actor: User, option: str, before: object, after: object, ip: str | None) -> None:
    session.flush()
    audit.record(
        session, actor=actor, action=f"segments.{option}", object_type="segment_options", object_id=1,
        object_label="segment options", before={option: before}, after={option: after}, ip=ip,
    )  # fmt: skip


def manifest(session: Session) -> dbt.Manifest:
    """The dbt manifest, read now."""
    location = options(session).dbt_manifest
    if not location:
        raise Invalid(
            "no dbt manifest is set: an admin sets it with `segmentsync dbt set-manifest PATH` (or on "
            "the dbt tab of a segment page)",
            code="dbt_manifest_not_set",
            field="dbt_model",
        )
    return dbt.load(location)


def sql_query(text: str, source: ProfileSource) -> KeyQuery:
    return KeyQuery(sqlcheck.check(text, source.engine).sql, label="the segment's SQL")


def dbt_query(model_name: str, source: ProfileSource, found: dbt.Manifest) -> KeyQuery:
    model = found.model(model_name)
    dialect = sqlcheck.dialect_of(source.engine)
    return KeyQuery(model.relation_query(dialect), label=f"dbt model {model.name}")


def check_returns_key(query: KeyQuery, source: ProfileSource) -> list[str]:
    """The query's columns, or :class:`Invalid` unless the profile key is one of them."""
    columns = source.query_columns(query)
    if source.key not in columns:
        raise Invalid(
            "%(label)s must return the profile key column %(key)s (it returns: %(value)s); e.g. SELECT p.%(column)s FROM …",
            params={
                "label": query.label,
                "key": repr(source.key),
                "value": ", ".join(columns) or "no columns",
                "column": source.key,
            },
            code="sql_without_key",
            field="sql",
        )
    if columns.count(source.key) > 1:
        raise Invalid(
            "%(label)s returns the column %(key)s more than once; name it once",
            params={"label": query.label, "key": repr(source.key)},
            code="sql_without_key",
            field="sql",
        )
    return columns


def selections(
    session: Session, source: ProfileSource, segments: Sequence[Segment]
) -> list[Group | KeyQuery]:
    """What the profile source runs for each segment (the manifest read once, if needed)."""
    found: dbt.Manifest | None = None
    result: list[Group | KeyQuery] = []
    for segment in segments:
        if segment.kind == "sql":
            result.append(sql_query(segment.sql or "", source))
        elif segment.kind == "dbt":
            found = found or manifest(session)
            result.append(dbt_query(segment.dbt_model or "", source, found))
        else:
            result.append(Group.model_validate(segment.rules))
    return result
