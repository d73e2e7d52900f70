"""What a run reads from the profile source: its export's segments and mapping, the count, the query.

The segments' union is counted first (one scan counts the union and each segment, whose counts
are stored as a refresh): over the export limit the run fails before anything is read or sent.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.connections.models import Connection
from segmentsync.engine.context import Context
from segmentsync.engine.snapshot import Mapping
from segmentsync.errors import Fatal, Invalid
from segmentsync.exports.models import Export, ExportSegment
from segmentsync.profiles.source import KeyQuery
from segmentsync.segments import extras, kinds
from segmentsync.segments.models import Segment
from segmentsync.segments.rules import Group
from segmentsync.segments.service import record_refresh


def segments_of(session: Session, export_id: int) -> list[Segment]:
    return list(
        session.scalars(
            sa.select(Segment)
            .join(ExportSegment, ExportSegment.segment_id == Segment.id)
            .where(ExportSegment.export_id == export_id)
        )
    )


def check_segments(segments: list[Segment]) -> None:
    if not segments:
        raise Invalid("this export has no segments", code="no_segments")


def mapping_of(export: Export, key: str, connection: Connection) -> Mapping:
    """What the export reads of each profile and how the platform names it (consent: Campaign
    Monitor only)."""
    consent = export.consent_to_track if connection.type.value == "campaign_monitor" else None
    return Mapping(
        key_column=key,
        email_column=export.email_column,
        attributes=[(item["column"], item["target"]) for item in export.attributes],
        consent=consent,
        consent_column=export.consent_column,
    )


def members_query(ctx: Context, segments: list[Segment], mapping: Mapping) -> Any:
    """The source's query of the segments' members (key and mapped columns), once they are
    counted within the export limit."""
    source = ctx.runtime.profiles
    with ctx.runtime.sessions() as session:  # a dbt segment's relation: from the manifest, read now
        rules = kinds.selections(session, source, segments)
    # Columns of the segments' queries the export maps (``segment.<column>``): none, nothing read.
    joins, types = extras.resolve(source, segments, rules, (column for column, _ in mapping.attributes))
    mapping.check([*source.columns(), *types])
    profile_columns = [c for c in mapping.source_columns() if c not in types]
    members = source.members(rules, [source.key, *profile_columns], extras=joins)
    total = _count_and_refresh(ctx, segments, rules)
    limit = ctx.runtime.settings.export_limit
    if total > limit:
        raise Fatal(
            "the selected segments hold %(total)s profiles; an export may send at most %(limit)s. Nothing was sent. Narrow the segments or raise SEGMENTSYNC_EXPORT_LIMIT.",
            params={"total": format(total, ","), "limit": format(limit, ",")},
            code="limit_exceeded",
        )
    return members


def _count_and_refresh(ctx: Context, segments: list[Segment], rules: list[Group | KeyQuery]) -> int:
    """The segments' union's member count; each run also refreshes its segments (their counts
    are stored with a history entry). One scan of the profiles counts all the rules; a SQL or
    dbt segment is counted on its own, under the SQL timeout, before anything is read."""
    started = time.perf_counter()
    source = ctx.runtime.profiles
    plain = [rule for rule in rules if isinstance(rule, Group)]
    if len(plain) == len(rules):
        union = [Group(op="or", items=plain)] if len(rules) > 1 else []
        counts = source.counts([*union, *plain])
        total, each = counts[0], counts[len(union) :]
    else:
        each = source.counts(rules)
        total = each[0] if len(rules) == 1 else source.count(source.members(rules, [source.key]))
    elapsed_ms = int((time.perf_counter() - started) * 1000)
    for segment, count in zip(segments, each, strict=True):
        with ctx.runtime.sessions() as session, session.begin():
            record_refresh(
                session=session,
                source=ctx.runtime.profiles,
                segment_id=segment.id,
                counted=(count, elapsed_ms),
            )
    return total
