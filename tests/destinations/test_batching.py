"""Batch packing: within both limits, nothing lost, repeated or reordered."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentsync.destinations.base import Limits, Member
from segmentsync.destinations.batching import ENVELOPE_BYTES, member_bytes, pack

values = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(st.text(max_size=20), max_size=4),
)
members = st.lists(
    st.builds(
        Member,
        email=st.emails(),
        fields=st.dictionaries(st.sampled_from(["first_name", "last_name", "cf:a", "cf:b", "Name"]), values),
    ),
    max_size=120,
)
limits = st.builds(
    Limits,
    max_batch_rows=st.integers(1, 40),
    max_batch_bytes=st.one_of(st.none(), st.integers(ENVELOPE_BYTES + 1, ENVELOPE_BYTES + 5_000)),
    concurrency=st.just(1),
    requests_per_second=st.none(),
)


@settings(max_examples=300, deadline=None)
@given(members=members, limits=limits)
def test_batches_keep_every_member_once_in_order_within_both_limits(
    members: list[Member], limits: Limits
) -> None:
    batches = list(pack(members, limits))
    assert [m for batch in batches for m in batch] == members
    for batch in batches:
        assert 1 <= len(batch) <= limits.max_batch_rows
        if limits.max_batch_bytes is not None and len(batch) > 1:
            assert sum(member_bytes(m) for m in batch) + ENVELOPE_BYTES <= limits.max_batch_bytes
    if limits.max_batch_bytes is None:  # rows only: every batch but the last is full
        assert all(len(batch) == limits.max_batch_rows for batch in batches[:-1])


@settings(max_examples=100, deadline=None)
@given(member=st.builds(Member, email=st.emails(), fields=st.dictionaries(st.text(max_size=10), values)))
def test_a_row_is_never_bigger_than_its_estimate(member: Member) -> None:
    """The estimate covers the way Constant Contact rows are written (values as text)."""
    row: dict[str, object] = {"email": member.email}
    for key, value in member.fields.items():
        if value is not None:
            row[key] = ", ".join(value) if isinstance(value, list) else str(value)
    assert len(orjson.dumps(row)) + 1 <= member_bytes(member)


def test_a_row_too_big_on_its_own_goes_alone() -> None:
    big = Member("big@example.com", {"cf:a": "x" * 5000})
    small = Member("small@example.com")
    batches = list(pack([small, big, small], Limits(10, ENVELOPE_BYTES + 1000, 1, None)))
    assert batches == [[small], [big], [small]]


def test_forty_thousand_rows_fill_a_constant_contact_batch() -> None:
    rows = [Member(f"person{i}@example.com", {"first_name": "A"}) for i in range(40_001)]
    sizes = [len(b) for b in pack(rows, Limits(40_000, 4_000_000, 1, 4))]
    assert sizes == [40_000, 1]
