"""A SQL segment's extra column (``SELECT p.profile_id, sum(o.amount) AS lifetime_value …``) mapped
to a custom field arrives in Campaign Monitor and Constant Contact (the sandboxes, over HTTP),
with the profiles on DuckDB and on PostgreSQL; a change of the value makes the member changed;
mapping a column the segment does not return, or a query returning a key twice, is refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import ibis
import pytest
import sqlalchemy as sa

from engine.test_run import load_run, run_export  # tests/ is on sys.path (rootdir)
from exports.world import World, build_world, sandbox_settings
from segmentsync.db import create_engine, transaction
from segmentsync.errors import Invalid
from segmentsync.exports.models import RunStatus
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.segments.models import Segment
from segmentsync.settings import Settings
from stores import POSTGRES_SERVER

ORDERS = [(1, 3, 150.0), (2, 3, 20.0), (3, 7, 60.0), (4, 7, 60.0), (5, 11, 99.0), (6, 40, 500.0)]
LIFETIME_SQL = """
SELECT p.profile_id, sum(o.amount) AS lifetime_value
FROM profiles AS p
JOIN orders AS o ON o.profile_id = p.profile_id
GROUP BY p.profile_id
HAVING sum(o.amount) > 100
"""
EXPECTED = {"person3@example.com": 170, "person7@example.com": 120, "person40@example.com": 500}


@pytest.fixture(scope="module")
def _postgres_profiles_url() -> Iterator[str]:
    name = f"segmentsync_profiles_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}_extra"
    admin = create_engine(f"{POSTGRES_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_SERVER}: {exc.__class__.__name__}")
    yield f"{POSTGRES_SERVER}/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def profiles_engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(
    tmp_path: Path, sandbox: Sandbox, profiles_engine: str, request: pytest.FixtureRequest
) -> Settings:
    found = sandbox_settings(tmp_path, sandbox)
    if profiles_engine == "postgres":
        found.profiles_url = request.getfixturevalue("_postgres_profiles_url")
    return found


@pytest.fixture
def world(runtime: Runtime, sandbox: Sandbox, profiles_engine: str) -> World:
    """The export tests' world (40 profiles, both platforms), with orders; on PostgreSQL, the same
    profiles copied there."""
    built = build_world(runtime, sandbox)
    sandbox.cc_faults(requests_per_second=None, instant_activities=True)
    path = runtime.settings.data_dir / "profiles.duckdb"
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE TABLE orders (order_id INTEGER, profile_id BIGINT, amount DOUBLE)")
        con.executemany("INSERT INTO orders VALUES (?, ?, ?)", ORDERS)
        profiles, orders = con.table("profiles").to_arrow_table(), con.table("orders").to_arrow_table()
    finally:
        con.close()
    if profiles_engine == "postgres":
        pg = ibis.connect("postgres://" + runtime.settings.profiles_url.split("://", 1)[1])
        pg.create_table("profiles", profiles, overwrite=True)
        pg.create_table("orders", orders, overwrite=True)
        pg.disconnect()
    return built


def add_order(world: World, profile_id: int, amount: float) -> None:
    sql = f"INSERT INTO orders VALUES (99, {profile_id}, {amount})"  # test constants
    if world.runtime.profiles.engine == "postgres":
        pg = ibis.connect("postgres://" + world.runtime.settings.profiles_url.split("://", 1)[1])
        pg.raw_sql(sql).close()
        pg.disconnect()
        return
    con = duckdb.connect(str(world.runtime.settings.data_dir / "profiles.duckdb"))
    try:
        con.execute(sql)
    finally:
        con.close()


def add_segment(world: World, name: str, sql: str) -> int:
    with transaction(world.runtime.sessions) as session:
        segment = Segment(name=name, kind="sql", sql=sql)
        session.add(segment)
        session.flush()
        return segment.id


def cm_fields_by_email(world: World) -> dict[str, dict[str, str]]:
    url = f"{world.sandbox.campaign_monitor_url}/_sandbox/lists/{world.cm.list_id}/subscribers?state=Active"
    rows = httpx.get(url, timeout=30).json()
    return {row["EmailAddress"].lower(): {f["Key"]: f["Value"] for f in row["CustomFields"]} for row in rows}


def cc_fields_by_email(world: World) -> dict[str, dict[str, Any]]:
    url = f"{world.sandbox.constant_contact_url}/_sandbox/lists/{world.cc.list_id}/members"
    rows = httpx.get(url, timeout=30).json()["members"]
    return {row["email"].lower(): dict(row["custom_fields"]) for row in rows}


def cc_custom_field(world: World, label: str) -> None:
    httpx.post(
        f"{world.sandbox.constant_contact_api}/contact_custom_fields",
        json={"label": label, "type": "string"},
        headers={"Authorization": f"Bearer {world.cc.credentials['access_token']}"},
        timeout=10,
    ).raise_for_status()


def number(value: Any) -> float:
    return float(str(value))


def test_an_extra_column_of_a_sql_segment_arrives_in_custom_fields_of_both_platforms(world: World) -> None:
    segment_id = add_segment(world, "Lifetime value", LIFETIME_SQL)
    mapped = {"column": "segment.lifetime_value"}
    cm_export = world.create(
        world.form(
            segment_ids=[segment_id], create_missing_fields=True,
            attributes=[{**mapped, "target": "[LifetimeValue]"}, {"column": "first_name", "target": "Name"}],
        )
    ).export_id  # fmt: skip
    cc_custom_field(world, "Lifetime value")
    cc_export = world.create(
        world.cc_form(segment_ids=[segment_id], attributes=[{**mapped, "target": "cf:Lifetime value"}])
    ).export_id

    for export_id in (cm_export, cc_export):
        run = run_export(world, export_id)
        assert run.status is RunStatus.SUCCEEDED, run.error
        assert (run.profiles, run.new) == (3, 3)
    on_cm = cm_fields_by_email(world)
    assert {email: number(fields["LifetimeValue"]) for email, fields in on_cm.items()} == EXPECTED
    on_cc = cc_fields_by_email(world)
    assert {email: number(next(iter(fields.values()))) for email, fields in on_cc.items()} == EXPECTED

    # Unchanged: nothing is sent again. A new order changes one member's value: that member only.
    again = run_export(world, cm_export)
    assert (again.unchanged, again.updated, again.new) == (3, 0, 0)
    add_order(world, 7, 5.5)
    for export_id in (cm_export, cc_export):
        later = run_export(world, export_id)
        assert (later.unchanged, later.updated, later.new) == (2, 1, 0), later.error
    assert number(cm_fields_by_email(world)["person7@example.com"]["LifetimeValue"]) == 125.5
    assert number(next(iter(cc_fields_by_email(world)["person7@example.com"].values()))) == 125.5


@pytest.mark.parametrize("profiles_engine", ["duckdb"])  # the checks are the engine's own above
def test_a_mapping_the_segments_cannot_fill_is_refused_by_name(world: World) -> None:
    segment_id = add_segment(world, "Lifetime value", LIFETIME_SQL)
    form = world.form(segment_ids=[segment_id], attributes=[{"column": "segment.nope", "target": "[Nope]"}])
    with pytest.raises(
        Invalid, match=r"'segment\.nope' is not returned .*they return: segment\.lifetime_value"
    ):
        world.create(form)
    # a rule segment returns no columns of its own
    rule_form = world.form(attributes=[{"column": "segment.lifetime_value", "target": "[LV]"}])
    with pytest.raises(Invalid, match="none of them returns a column besides the key") as caught:
        world.create(rule_form)
    assert caught.value.field == "attributes"

    # a query returning a key twice (one row per order) gives one member two values: refused
    each_order = add_segment(world, "Each order", "SELECT o.profile_id, o.amount FROM orders AS o")
    twice = world.form(
        name="Orders", segment_ids=[each_order], create_missing_fields=True,
        attributes=[{"column": "segment.amount", "target": "[Amount]"}],
    )  # fmt: skip
    with pytest.raises(Invalid, match=r"returns the profile key 3 2 times.*GROUP BY") as refused:
        world.create(twice)
    # said once, as what it is: not also "not a column of the profile table" for the same mapping
    assert refused.value.code == "repeated_key", refused.value.message
    assert "profile table" not in refused.value.message

    # … and so does a run, when the segment's query changed after the export was saved
    saved = world.create(
        world.form(
            name="Lifetime", segment_ids=[segment_id], create_missing_fields=True,
            attributes=[{"column": "segment.lifetime_value", "target": "[LifetimeValue]"}],
        )
    )  # fmt: skip
    with transaction(world.runtime.sessions) as session:
        segment = session.get(Segment, segment_id)
        assert segment is not None
        segment.sql = "SELECT o.profile_id, o.amount AS lifetime_value FROM orders AS o"
    run = run_export(world, saved.export_id)
    assert run.status is RunStatus.FAILED
    assert "returns the profile key 3 2 times" in (run.error or ""), run.error
    assert "segment.lifetime_value" in (run.error or "")
    assert load_run(world, run.id).rows_sent == 0
