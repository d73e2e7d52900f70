"""A SQL segment joining two tables selects the same members as the equivalent rule segment over
a view, on every engine: its count, its preview and the members an export reads."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from segmentsync.profiles.source import KeyQuery, ProfileSource
from segmentsync.segments import sql
from segmentsync.segments.rules import parse

from .orders import BIG_SPENDERS, RULE, SEGMENT_SQL, add_orders


@pytest.fixture(scope="module")
def sources(engine_source: ProfileSource) -> Iterator[tuple[ProfileSource, ProfileSource]]:
    """(the profile table, the view) on one engine."""
    add_orders(engine_source)
    over_view = ProfileSource(engine_source.url, table="profiles_spent", lock_wait=1)
    yield engine_source, over_view
    if over_view.engine != "pyspark":
        over_view.close()


def keys(table: pa.Table) -> list[int]:
    return sorted(table.column("profile_id").to_pylist())


def test_sql_segment_and_rule_over_a_view_agree(sources: tuple[ProfileSource, ProfileSource]) -> None:
    profiles, view = sources
    query = KeyQuery(sql.check(SEGMENT_SQL, profiles.engine).sql)
    assert profiles.query_columns(query) == ["profile_id"]

    # counts (with a rule in the same call: the rules in one scan, the query on its own)
    everyone = parse({"items": []})
    assert profiles.counts([everyone, query]) == [12, len(BIG_SPENDERS)]
    assert view.counts([RULE]) == [len(BIG_SPENDERS)]

    # preview
    by_sql = profiles.preview(profiles.members([query], ["email"]), limit=10)
    by_rule = view.preview(view.members([RULE], ["email"]), limit=10)
    assert by_sql.to_pylist() == by_rule.to_pylist()
    assert keys(by_sql) == sorted(BIG_SPENDERS)

    # what a run reads: the members streamed, and their union with a rule segment
    streamed = pa.Table.from_batches(list(profiles.stream(profiles.members([query], ["email"]))))
    assert keys(streamed) == sorted(BIG_SPENDERS)
    latvians = parse({"items": [{"column": "country", "operator": "eq", "value": "LV"}]})  # 2, 10
    union = profiles.count(profiles.members([query, latvians], ["email"]))
    assert union == len(BIG_SPENDERS | {2, 10})
