"""The contract of ``upsert_rows``, the path the run engine takes, checked like ``upsert``'s.

The rows are rendered by the destination's own ``row_template`` (its SQL, run by DuckDB, as a
run's workspace runs it) and sent over real HTTP to each platform's sandbox; the platform's state
is read back. ``upsert_rows`` answers only the rows that did not end as their plan expected.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pytest

from segmentsync.destinations.base import Destination, FieldType, RenderedBatch
from segmentsync.destinations.templates import Value
from segmentsync.outcomes import Outcome

from .platforms import Platform

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def destination(platform: Platform) -> Iterator[Destination]:
    dest = platform.destination()
    yield dest
    dest.close()


def rendered(
    destination: Destination,
    list_id: str,
    people: list[tuple[str, dict[str, str | None]]],
    *,
    planned_new: bool,
) -> RenderedBatch:
    """The rows of ``people`` (email, {field: value}) as the run engine renders them."""
    targets = sorted({target for _, fields in people for target in fields})
    values = [(target, Value(f"v{i}", "text")) for i, target in enumerate(targets)]
    consent = Value("consent", "text")
    template = destination.row_template(list_id, values, consent=consent)
    data = {"email": pa.array([email for email, _ in people], pa.string())}
    for target, value in values:
        data[value.sql] = pa.array([fields.get(target) for _, fields in people], pa.string())
    data["consent"] = pa.array(["Yes"] * len(people), pa.string())
    con = duckdb.connect()
    con.register("members", pa.table(data))
    rows = con.execute(
        f"SELECT CAST({template.row.text} AS VARCHAR) FROM members",  # the template's own SQL
        list(template.row.params),
    ).fetchall()
    emails = [email for email, _ in people]
    return RenderedBatch(
        emails=emails, rows=[row for (row,) in rows], planned_new=[planned_new] * len(emails)
    )


def people(platform: Platform, numbers: range, tag: str = "") -> list[tuple[str, dict[str, str | None]]]:
    return [(f"person{i}@example.com", {platform.name_key: f"Person {i}{tag}"}) for i in numbers]


def deliver(platform: Platform, destination: Destination, list_id: str, numbers: range) -> None:
    """Put these people on the list first, as a run that planned them new would."""
    assert (
        destination.upsert_rows(
            list_id, rendered(destination, list_id, people(platform, numbers), planned_new=True)
        )
        == {}
    )


def test_rows_as_planned_are_answered_by_nothing_and_delivered(
    platform: Platform, destination: Destination
) -> None:
    list_id = platform.new_list("Customers")
    assert (
        destination.upsert_rows(
            list_id, rendered(destination, list_id, people(platform, range(5)), planned_new=True)
        )
        == {}
    )
    again = rendered(destination, list_id, people(platform, range(5), " renamed"), planned_new=False)
    assert destination.upsert_rows(list_id, again) == {}
    seen = platform.read_back(list_id)
    assert sorted(seen) == [f"person{i}@example.com" for i in range(5)]
    assert seen["person0@example.com"].name == "Person 0 renamed"
    assert {s.state for s in seen.values()} == {"active"}


def test_members_planned_new_but_already_there(platform: Platform, destination: Destination) -> None:
    list_id = platform.new_list("Known")
    deliver(platform, destination, list_id, range(3))
    again = rendered(destination, list_id, people(platform, range(3), " again"), planned_new=True)
    answered = destination.upsert_rows(list_id, again)
    if platform.type == "campaign_monitor":  # its import counts the new subscribers: none here
        assert {i: result.outcome for i, result in answered.items()} == dict.fromkeys(
            range(3), Outcome.UPDATED
        )
    else:  # Constant Contact reports no such count: the run's plan is trusted (docs/destinations.md)
        assert answered == {}
    assert platform.read_back(list_id)["person2@example.com"].name == "Person 2 again"


def test_a_mixed_batch_planned_right_is_answered_by_nothing(
    platform: Platform, destination: Destination
) -> None:
    list_id = platform.new_list("Mixed")
    deliver(platform, destination, list_id, range(2))
    batch = rendered(destination, list_id, people(platform, range(4), " again"), planned_new=False)
    mixed = RenderedBatch(emails=batch.emails, rows=batch.rows, planned_new=[False, False, True, True])
    assert destination.upsert_rows(list_id, mixed) == {}
    assert sorted(platform.read_back(list_id)) == [f"person{i}@example.com" for i in range(4)]


def test_an_invalid_row_is_rejected_and_the_others_delivered(
    platform: Platform, destination: Destination
) -> None:
    list_id = platform.new_list("Partial")
    batch = [*people(platform, range(2)), ("not-an-address@example", {platform.name_key: "Nobody"})]
    answered = destination.upsert_rows(list_id, rendered(destination, list_id, batch, planned_new=True))
    assert sorted(answered) == [2]
    assert answered[2].outcome is Outcome.REJECTED
    assert answered[2].code
    assert answered[2].message
    assert sorted(platform.read_back(list_id)) == ["person0@example.com", "person1@example.com"]


def test_someone_unsubscribed_in_the_platform_is_skipped_not_resubscribed(
    platform: Platform, destination: Destination
) -> None:
    list_id = platform.new_list("Opt-outs")
    deliver(platform, destination, list_id, range(3))
    platform.unsubscribe(list_id, "person1@example.com")
    again = rendered(destination, list_id, people(platform, range(3), " again"), planned_new=False)
    answered = destination.upsert_rows(list_id, again)
    assert sorted(answered) == [1]
    assert answered[1].outcome is Outcome.SKIPPED
    assert "unsubscribed" in (answered[1].message or "")
    assert platform.read_back(list_id)["person1@example.com"].state == "unsubscribed"


def test_custom_field_values_arrive_as_rendered(platform: Platform, destination: Destination) -> None:
    list_id = platform.new_list("Fields")
    city = destination.create_custom_field(list_id, "City", FieldType.TEXT)
    batch = [("a@example.com", {city.key: "Tallinn"}), ("b@example.com", {city.key: None})]
    assert destination.upsert_rows(list_id, rendered(destination, list_id, batch, planned_new=True)) == {}
    seen = platform.read_back(list_id)
    assert seen["a@example.com"].fields == {"City": "Tallinn"}
    assert seen["b@example.com"].fields.get("City") in (None, "")
