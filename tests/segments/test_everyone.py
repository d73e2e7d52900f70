"""A rule with no conditions: AND of nothing is everyone, OR of nothing is no one — on every engine."""

from __future__ import annotations

from segmentsync.profiles.source import ProfileSource
from segmentsync.segments.rules import Group


def test_empty_groups_select_everyone_or_no_one(engine_source: ProfileSource) -> None:
    everyone, no_one = Group(op="and", items=[]), Group(op="or", items=[])
    total = engine_source.row_count()
    assert total > 0
    assert engine_source.counts([everyone, no_one]) == [total, 0]
    assert engine_source.count(engine_source.members([everyone], [])) == total
    assert engine_source.counts([Group(op="and", negate=True, items=[])]) == [0]
