"""Columns a SQL or dbt segment returns besides the profile key, offered to an export's mapping.

A SQL segment's query (or a dbt model's relation) says *who*; the profile table says *what we
send*. A query may also return values the profile table does not hold (``sum(o.total) AS
lifetime_value``): an export maps them to list fields like profile columns, under the name
``segment.<column>`` (``segment.lifetime_value``). The prefix keeps them apart from profile
columns of the same name, so nothing clashes; a name that begins with ``segment.`` always means a
segment's column.

* Where a value comes from: the one segment of the export that returns the column. Two segments
  of one export that both return a mapped column are refused (rename it in one query).
* One row per key: a query that returns a key twice (orders not aggregated) gives two values for
  one member; saving the export and every run refuse it, naming the key (no "first row": SQL has
  no first row without an ORDER BY, so the value sent would change from run to run).
* A member that the segment's query does not return (it is in the export through another
  segment) gets no value (null) for the segment's columns.

An export that maps no ``segment.`` column pays nothing for this (no query is read for it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import ibis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.errors import Invalid, SegmentSyncError
from segmentsync.profiles.columns import ColumnType, column_type
from segmentsync.profiles.source import ExtraColumns, KeyQuery, ProfileSource
from segmentsync.segments import kinds
from segmentsync.segments.models import Segment
from segmentsync.segments.rules import Group

PREFIX = "segment."


def is_segment_column(name: str) -> bool:
    return name.startswith(PREFIX)


@dataclass(frozen=True)
class Offered:
    """One column a segment's query returns besides the key, as the mapping names it."""

    name: str  # segment.<column>
    column: str  # as the query returns it
    type: ColumnType
    segment_id: int
    segment_name: str


def of_segment(
    source: ProfileSource, segment: Segment, selection: Group | KeyQuery
) -> tuple[KeyQuery | None, list[Offered], dict[str, object]]:
    """(the segment's query, its columns besides the key, the query's schema by column)."""
    if not isinstance(selection, KeyQuery):
        return None, [], {}
    schema = source.query_schema(selection)
    offered = [
        Offered(PREFIX + name, name, column_type(dtype), segment.id, segment.name)
        for name, dtype in schema.items()
        if name != source.key
    ]
    return selection, offered, dict(schema.items())


def columns_of(session: Session, source: ProfileSource, segment: Segment) -> list[Offered]:
    """The columns one segment's query returns besides the key (a rule segment: none)."""
    (selection,) = kinds.selections(session, source, [segment])
    return of_segment(source, segment, selection)[1]


def offered(
    session: Session, source: ProfileSource, segments: Sequence[Segment]
) -> list[tuple[Segment, list[Offered] | str]]:
    """Each SQL or dbt segment with the columns its query returns besides the key, or why they
    could not be read (the export form's choices; rule segments are left out)."""
    found: list[tuple[Segment, list[Offered] | str]] = []
    for segment in segments:
        if segment.kind == "rule":
            continue
        try:
            found.append((segment, columns_of(session, source, segment)))
        except SegmentSyncError as exc:
            found.append((segment, exc.message))
    return found


def resolve(
    source: ProfileSource,
    segments: Sequence[Segment],
    selections: Sequence[Group | KeyQuery],
    wanted: Iterable[str],
) -> tuple[list[ExtraColumns], dict[str, ColumnType]]:
    """The joins that bring the ``wanted`` ``segment.`` columns to the members, and their types;
    :class:`Invalid` (field ``attributes``) naming a column no segment, or more than one, returns."""
    names = list(dict.fromkeys(name for name in wanted if is_segment_column(name)))
    if not names:
        return [], {}
    providers: dict[str, list[Offered]] = {}
    queries: dict[int, tuple[KeyQuery, dict[str, object]]] = {}
    for segment, selection in zip(segments, selections, strict=True):
        try:
            query, columns, schema = of_segment(source, segment, selection)
        except SegmentSyncError as exc:
            raise Invalid(
                "the columns of segment “%(segment)s” could not be read: %(reason)s",
                params={"segment": segment.name, "reason": exc.message},
                code=exc.code,
                field="attributes",
            ) from None
        if query is not None:
            queries[segment.id] = (query, schema)
        for item in columns:
            providers.setdefault(item.name, []).append(item)
    chosen: dict[int, list[Offered]] = {}
    for name in names:
        found = providers.get(name, [])
        if len(found) > 1:
            both = " and ".join(f"“{item.segment_name}”" for item in found)
            raise Invalid(
                "the column %(column)s is returned by more than one of the export's segments (%(segments)s); "
                "rename it in one of the queries (… AS another_name) and map the one you mean",
                params={"column": repr(name), "segments": both},
                code="ambiguous_segment_column",
                field="attributes",
            )
        if not found:
            raise _unknown(name, sorted(providers))
        chosen.setdefault(found[0].segment_id, []).append(found[0])
    extras = []
    for segment_id, items in chosen.items():
        query, schema = queries[segment_id]
        labelled = replace(query, label=f"segment “{items[0].segment_name}”")
        pairs = tuple((item.column, item.name) for item in items)
        extras.append(ExtraColumns(labelled, pairs, ibis.schema({c: schema[c] for c, _ in pairs})))
    types = {item.name: item.type for items in chosen.values() for item in items}
    return extras, types


def _unknown(name: str, known: list[str]) -> Invalid:
    if known:
        return Invalid(
            "the attribute column %(column)s is not returned by the export's SQL or dbt segments "
            "(they return: %(known)s); a name beginning with %(prefix)s means a column of a segment's query",
            params={"column": repr(name), "known": ", ".join(known), "prefix": repr(PREFIX)},
            code="unknown_column",
            field="attributes",
        )
    return Invalid(
        "the attribute column %(column)s is not returned by the export's SQL or dbt segments (none of "
        "them returns a column besides the key); a name beginning with %(prefix)s means a column of a "
        "segment's query",
        params={"column": repr(name), "prefix": repr(PREFIX)},
        code="unknown_column",
        field="attributes",
    )


def for_export_form(
    session: Session, source: ProfileSource, segment_ids: Sequence[int], columns: Iterable[str]
) -> dict[str, ColumnType]:
    """The ``segment.`` columns an export form maps, with their types, checked against the chosen
    segments (nothing is read unless the form maps one): each returned by exactly one segment, and
    one row per key. Unknown segment IDs are left to the form's own check."""
    wanted = [name for name in columns if is_segment_column(name)]
    if not wanted:
        return {}
    segments = list(session.scalars(sa.select(Segment).where(Segment.id.in_(list(segment_ids)))))
    try:
        selections = kinds.selections(session, source, segments)
    except SegmentSyncError as exc:  # a query refused, no dbt manifest: said for the mapping
        raise Invalid(
            "the segments' columns could not be read: %(reason)s",
            params={"reason": exc.message},
            code=exc.code,
            field="attributes",
        ) from None
    extras, types = resolve(source, segments, selections, wanted)
    try:
        repeated = source.repeated_key(source.members(selections, [], extras=extras))
    except SegmentSyncError:  # the count of the form's members reports the query's failure
        return types
    if repeated is not None:
        key, times = repeated
        raise Invalid(
            "the query of %(whose)s returns the profile key %(key)s %(times)s times; an export that maps "
            "its columns (%(mapped)s) needs one row per key: aggregate by the key (GROUP BY)",
            params={
                "whose": " or ".join(dict.fromkeys(extra.query.label for extra in extras)),
                "key": repr(key),
                "times": times,
                "mapped": ", ".join(alias for extra in extras for _, alias in extra.names),
            },
            code="repeated_key",
            field="attributes",
        )
    return types
