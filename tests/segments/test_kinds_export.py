"""An export of a SQL segment and of a dbt segment delivers exactly their members to both sandbox
platforms (Campaign Monitor and Constant Contact), through the run engine."""

from __future__ import annotations

from pathlib import Path

import duckdb
import httpx
import pytest

from engine.test_run import PLATFORMS, make_export, platform_list, run_export
from exports import conftest as export_fixtures  # tests/ is on sys.path (rootdir)
from exports.world import World
from segmentsync.db import transaction
from segmentsync.exports.models import RunStatus
from segmentsync.profiles import store
from segmentsync.segments import kinds
from segmentsync.segments.models import Segment

from .orders import create_view

# The export tests' world: users, 40 profiles, segments, connections to both sandbox platforms.
settings, world = export_fixtures.settings, export_fixtures.world

# The world's 40 profiles (person<i>@example.com); orders for a few of them.
ORDERS_SQL = """
CREATE OR REPLACE TABLE orders AS
SELECT * FROM (VALUES (1, 3, 150.0), (2, 3, 20.0), (3, 7, 60.0), (4, 7, 60.0), (5, 11, 99.0), (6, 40, 500.0))
  AS t(order_id, profile_id, amount)
"""
SEGMENT_SQL = """
SELECT p.profile_id
FROM profiles AS p
JOIN orders AS o ON o.profile_id = p.profile_id
GROUP BY p.profile_id
HAVING sum(o.amount) > 100
"""
EXPECTED = {"person3@example.com", "person7@example.com", "person40@example.com"}


@pytest.fixture(autouse=True)
def _orders(world: World) -> None:
    world.sandbox.cc_faults(requests_per_second=None, instant_activities=True)
    con = duckdb.connect(str(store.embedded_path(world.runtime.settings)))
    try:
        con.execute(ORDERS_SQL)
    finally:
        con.close()


def add_segment(world: World, name: str, **definition: str) -> int:
    kind = "sql" if "sql" in definition else "dbt"
    with transaction(world.runtime.sessions) as session:
        segment = Segment(name=name, kind=kind, **definition)
        session.add(segment)
        session.flush()
        return segment.id


def members_of(world: World, platform: str, list_id: str) -> set[str]:
    """Who is on a list of the platform (active members), by lower-case email."""
    if platform == "campaign_monitor":
        url = f"{world.sandbox.campaign_monitor_url}/_sandbox/lists/{list_id}/subscribers?state=Active"
        return {row["EmailAddress"].lower() for row in httpx.get(url, timeout=30).json()}
    url = f"{world.sandbox.constant_contact_url}/_sandbox/lists/{list_id}/members"
    return {row["email"].lower() for row in httpx.get(url, timeout=30).json()["members"]}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_sql_and_a_dbt_segment_are_delivered_exactly(
    world: World, platform: str, dbt_manifest: Path
) -> None:
    # The SQL segment, alone, to the export's list.
    sql_id = add_segment(world, "Big spenders (SQL)", sql=SEGMENT_SQL)
    run = run_export(world, make_export(world, platform, segment_ids=[sql_id]))
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert set(platform_list(world, platform)) == EXPECTED
    assert (run.profiles, run.new) == (3, 3)
    with world.runtime.sessions() as session:  # the run refreshed the segment's count
        assert session.get(Segment, sql_id).member_count == 3  # type: ignore[union-attr]

    # The dbt model (its relation as the manifest names it), with a rule segment, to another list.
    create_view(store.embedded_path(world.runtime.settings), "big_spenders_v1", SEGMENT_SQL)
    with transaction(world.runtime.sessions) as session:
        kinds.options(session).dbt_manifest = str(dbt_manifest)
    dbt_id = add_segment(world, "Big spenders (dbt)", dbt_model="big_spenders")
    other = world.cm.other_list_id if platform == "campaign_monitor" else world.cc.other_list_id
    export_id = make_export(
        world, platform, name=f"{platform} dbt", list_id=other, segment_ids=[dbt_id, world.segments["LV"]]
    )
    run = run_export(world, export_id)
    assert run.status is RunStatus.SUCCEEDED, run.error
    latvians = {f"person{i}@example.com" for i in range(1, 41) if i % 4 == 1}
    assert members_of(world, platform, other) == EXPECTED | latvians


def test_the_export_form_counts_sql_segments_and_warns_over_the_limit(world: World) -> None:
    segment_id = add_segment(world, "Big spenders (SQL)", sql=SEGMENT_SQL)
    world.runtime.settings.export_limit = 12
    saved = world.create(world.form(segment_ids=[segment_id, world.segments["LV"]]))
    assert saved.members == 3 + 10  # person3 and person7 are not Latvians; nor is person40
    assert any("over the limit of 12" in warning for warning in saved.warnings), saved.warnings
