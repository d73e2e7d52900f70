"""A run's per-row outcomes read back in seq order, wherever they are kept: sent, refused and
invalid members one row each, unchanged members compactly — searchable, paged and in the CSV."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.test_run import change_profiles, make_export, run_export  # tests/ is on sys.path (rootdir)
from segmentsync.exports import run_rows, runs
from segmentsync.exports.models import Run

from .world import World


@pytest.fixture
def mixed_run(world: World) -> Run:
    """40 members delivered, then: 2 changed, 1 without an email, 37 unchanged."""
    export_id = make_export(
        world, "campaign_monitor", attributes=[{"column": "first_name", "target": "Name"}]
    )
    run_export(world, export_id)
    change_profiles(world, "UPDATE profiles SET first_name = 'Changed' WHERE profile_id IN (5, 30)")
    change_profiles(world, "UPDATE profiles SET email = NULL WHERE profile_id = 12")
    run = run_export(world, export_id)
    assert (run.updated, run.invalid, run.unchanged) == (2, 1, 37)
    return run


def test_every_member_is_listed_once_in_seq_order(world: World, mixed_run: Run) -> None:
    with world.runtime.readers() as session:
        everyone, total = runs.rows_page(session, mixed_run.id, email=None, outcome=None, limit=100, offset=0)
    assert total == len(everyone) == 40
    assert [m.seq for m in everyone] == sorted(m.seq for m in everyone)
    assert [m.outcome.value for m in everyone if m.outcome] == ["updated"] * 2 + ["unchanged"] * 37 + [
        "invalid"
    ]
    assert len({m.email for m in everyone if m.outcome and m.outcome.value == "unchanged"}) == 37


@pytest.mark.parametrize(("offset", "limit"), [(0, 3), (1, 5), (37, 10), (38, 2), (39, 5)])
def test_pages_cross_from_one_store_to_the_other(
    world: World, mixed_run: Run, offset: int, limit: int
) -> None:
    with world.runtime.readers() as session:
        everyone, _ = runs.rows_page(session, mixed_run.id, email=None, outcome=None, limit=100, offset=0)
        page, total = runs.rows_page(
            session, mixed_run.id, email=None, outcome=None, limit=limit, offset=offset
        )
    assert total == 40
    assert [m.seq for m in page] == [m.seq for m in everyone[offset : offset + limit]]


def test_a_page_at_an_offset_finds_where_the_rows_lie_in_one_statement(world: World, mixed_run: Run) -> None:
    """Where the run's rows lie (stored ones, the unchanged stretch; pruned or not) is one
    statement: the run, that, the stretch's header and the stretch's block — it was ten."""
    with world.runtime.readers() as session:
        statements: list[str] = []

        def note(connection: object, cursor: object, statement: str, *rest: object) -> None:
            if statement.startswith("SELECT"):  # not SQLite's BEGIN
                statements.append(statement)

        engine = session.get_bind()
        sa.event.listen(engine, "before_cursor_execute", note)
        try:
            page, total = runs.rows_page(session, mixed_run.id, email=None, outcome=None, limit=5, offset=10)
        finally:
            sa.event.remove(engine, "before_cursor_execute", note)
    assert (total, [m.outcome.value for m in page if m.outcome]) == (40, ["unchanged"] * 5)
    assert len(statements) == 4, statements
    with world.runtime.readers() as session:
        assert run_rows.bounds(session, mixed_run.id) == (page[0].seq - 10, page[0].seq + 29)


def test_search_and_filter_reach_the_unchanged_members(world: World, mixed_run: Run) -> None:
    with world.runtime.readers() as session:
        found, total = runs.rows_page(
            session, mixed_run.id, email="PERSON1", outcome=None, limit=50, offset=0
        )
        unchanged, count = runs.rows_page(
            session, mixed_run.id, email=None, outcome="unchanged", limit=5, offset=0
        )
        updated, _ = runs.rows_page(session, mixed_run.id, email=None, outcome="updated", limit=5, offset=0)
    # person1, person10…19 (12 has no email any more)
    assert total == len(found) == 10
    assert all("person1" in m.email for m in found)
    assert (count, len(unchanged)) == (37, 5)
    assert sorted(m.email for m in updated) == ["person30@example.com", "person5@example.com"]


def test_the_csv_holds_every_member(world: World, mixed_run: Run) -> None:
    with world.runtime.readers() as session:
        lines = list(runs.csv_lines(session, mixed_run.id))
    assert lines[0] == list(runs.CSV_COLUMNS)
    assert len(lines) == 41
    assert sum(1 for line in lines if line[3] == "unchanged") == 37
