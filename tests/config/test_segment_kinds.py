"""SQL and dbt segments in configuration as code: exported, planned and applied to an empty
deployment and exported again the same; bad SQL refused at plan time with the API's own message
(line and column of the SQL) at the line of the file; the policy ``segments.sql`` honoured."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from exports.world import World, make_person
from segments.conftest import dbt_manifest  # noqa: F401  # the fixture: dbt's own manifest
from segments.orders import create_view
from segmentsync.auth import policy
from segmentsync.auth.models import Role, User
from segmentsync.auth.policy import Action
from segmentsync.config import apply, document, state
from segmentsync.config.document import ConfigProblems
from segmentsync.db import transaction
from segmentsync.errors import Invalid
from segmentsync.profiles import store
from segmentsync.runtime import Runtime
from segmentsync.segments import kinds
from segmentsync.segments import sql as sqlcheck
from segmentsync.segments.models import Segment

ORDERS_SQL = """
CREATE OR REPLACE TABLE orders AS
SELECT * FROM (VALUES (1, 3, 150.0), (2, 7, 120.0), (3, 11, 99.0)) AS t(order_id, profile_id, amount)
"""
SEGMENT_SQL = """\
SELECT p.profile_id, sum(o.amount) AS lifetime_value
FROM profiles AS p
JOIN orders AS o ON o.profile_id = p.profile_id
GROUP BY p.profile_id
HAVING sum(o.amount) > 100
"""


@pytest.fixture(autouse=True)
def _orders(world: World) -> None:
    path = store.embedded_path(world.runtime.settings)
    con = duckdb.connect(str(path))
    try:
        con.execute(ORDERS_SQL)
    finally:
        con.close()
    create_view(path, "big_spenders_v1")  # the dbt model's relation, as `dbt run` would make it


def admin(runtime: Runtime, email: str = "ada@example.com") -> User:
    with runtime.readers() as session:
        found = session.query(User).filter_by(email=email).one()
        session.expunge(found)
        return found


def set_manifest(runtime: Runtime, manifest: Path) -> None:
    with transaction(runtime.sessions) as session:
        kinds.options(session).dbt_manifest = str(manifest)


def exported(runtime: Runtime) -> str:
    with runtime.readers() as session:
        return document.dump(state.export_config(session, actor=admin(runtime)))


def segments_only(text: str) -> str:
    """The file's segments (connections and exports are the round-trip test's)."""
    body = text.split("\nsegments:\n", 1)[1].split("\nconnections:", 1)[0]
    return f"version: 1\nsegments:\n{body}\n"


def test_sql_and_dbt_segments_round_trip(world: World, empty_runtime: Runtime, dbt_manifest: Path) -> None:  # noqa: F811
    set_manifest(world.runtime, dbt_manifest)
    with transaction(world.runtime.sessions) as session:
        session.add(Segment(name="Lifetime value", kind="sql", sql=SEGMENT_SQL, description="orders > 100"))
        session.add(Segment(name="Big spenders (dbt)", kind="dbt", dbt_model="big_spenders"))
    text = exported(world.runtime)
    assert "kind: sql\n    sql: |\n      SELECT p.profile_id, sum(o.amount) AS lifetime_value\n" in text
    assert "kind: dbt\n    dbt_model: big_spenders\n" in text
    assert "kind: rule\n    rules:" in text

    make_person(empty_runtime, "ada@example.com", Role.ADMIN)
    set_manifest(empty_runtime, dbt_manifest)  # the manifest is an admin's setting, not in the file
    file = segments_only(text)
    planned = apply.plan(runtime=empty_runtime, actor=admin(empty_runtime), text=file)
    created = {c.name: c.fields for c in planned.changes if c.kind == "segment"}
    assert created["Lifetime value"]["sql"] == [None, SEGMENT_SQL]
    assert created["Big spenders (dbt)"]["dbt_model"] == [None, "big_spenders"]
    assert created["Big spenders (dbt)"]["kind"] == [None, "dbt"]
    with empty_runtime.readers() as session:
        assert state.current(session)["segments"] == []  # a plan writes nothing

    apply.apply(runtime=empty_runtime, actor=admin(empty_runtime), text=file)
    with empty_runtime.readers() as session:
        made = {s.name: (s.kind, s.sql, s.dbt_model) for s in session.query(Segment)}
    assert made["Lifetime value"] == ("sql", SEGMENT_SQL, None)
    assert made["Big spenders (dbt)"] == ("dbt", None, "big_spenders")
    assert segments_only(exported(empty_runtime)) == file
    assert apply.plan(runtime=empty_runtime, actor=admin(empty_runtime), text=file).changes == []

    # A segment changes kind, and a query changes: both through the segment service.
    changed = file.replace(
        "kind: dbt\n    dbt_model: big_spenders", "kind: sql\n    sql: SELECT profile_id FROM big_spenders_v1"
    )
    applied = apply.apply(runtime=empty_runtime, actor=admin(empty_runtime), text=changed)
    (change,) = applied.changes
    assert change.fields["kind"] == ["dbt", "sql"]
    assert change.fields["sql"] == [None, "SELECT profile_id FROM big_spenders_v1"]


BAD_SQL = """\
version: 1
segments:
  - name: Lifetime value
    kind: sql
    sql: |
      SELECT p.profile_id FROM profiles AS p;
      DROP TABLE profiles
  - name: No query
    kind: sql
  - name: Two definitions
    kind: dbt
    dbt_model: big_spenders
    sql: SELECT profile_id FROM profiles
  - name: Unparsable
    sql: SELECT profile_id FROM profiles WHERE (
"""


def api_message(sql: str) -> str:
    with pytest.raises(Invalid) as refused:
        sqlcheck.check(sql, "duckdb")
    return refused.value.message


def test_bad_sql_is_refused_at_plan_time_with_the_api_message_at_its_line(world: World) -> None:
    with pytest.raises(ConfigProblems) as caught:
        apply.plan(runtime=world.runtime, actor=admin(world.runtime), text=BAD_SQL)
    problems = [(p.line, p.path, p.message) for p in caught.value.problems]
    assert problems == [  # the file's shape first: no service is asked
        (8, "segments[1]", "a sql segment needs sql"),
        (10, "segments[2]", "a dbt segment takes dbt_model, not sql"),
    ]

    valid_shape = (
        BAD_SQL.split("  - name: No query")[0]
        + "  - name: Unparsable"
        + BAD_SQL.split("  - name: Unparsable")[1]
    )
    with pytest.raises(ConfigProblems) as caught:
        apply.plan(runtime=world.runtime, actor=admin(world.runtime), text=valid_shape)
    first, second = caught.value.problems
    statements = "SELECT p.profile_id FROM profiles AS p;\nDROP TABLE profiles\n"
    assert (first.line, first.path) == (5, "segments[0].sql")
    assert first.message == api_message(statements)
    assert first.message.startswith("line 2, column 1: only one statement is allowed")
    assert (second.line, second.path) == (9, "segments[1].sql")
    assert second.message == api_message("SELECT profile_id FROM profiles WHERE (")
    assert "line 1, column" in second.message
    with world.runtime.readers() as session:
        assert session.query(Segment).filter_by(kind="sql").count() == 0


SQL_FILE = f"""\
version: 1
segments:
  - name: Lifetime value
    kind: sql
    sql: |
{"".join("      " + line + chr(10) for line in SEGMENT_SQL.splitlines())}"""


def test_apply_honours_the_sql_policy(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = world.runtime
    # An admin restricted SQL segments to admins: an admin's file still applies.
    with transaction(runtime.sessions) as session:
        kinds.set_sql_admins_only(session=session, actor=session.merge(admin(runtime)), value=True)
    apply.apply(runtime=runtime, actor=admin(runtime), text=SQL_FILE)
    with runtime.readers() as session:
        assert session.query(Segment).filter_by(name="Lifetime value").one().sql == SEGMENT_SQL

    # A policy table where nobody may write SQL (a deployment's narrower one): the query changes
    # nothing, with the policy's message; the same segment left as it is still applies.
    monkeypatch.setitem(policy.POLICY, Action.SEGMENTS_SQL, frozenset())
    assert apply.plan(runtime=runtime, actor=admin(runtime), text=SQL_FILE).changes == []
    changed = SQL_FILE.replace("> 100", "> 150")
    with pytest.raises(ConfigProblems) as caught:
        apply.apply(runtime=runtime, actor=admin(runtime), text=changed)
    (problem,) = caught.value.problems
    assert problem.path == "segments[0]"
    assert "does not allow segments.sql" in problem.message
    with runtime.readers() as session:
        assert session.query(Segment).filter_by(name="Lifetime value").one().sql == SEGMENT_SQL


def test_an_export_in_the_file_maps_a_column_of_a_sql_segment_of_the_file(world: World) -> None:
    export = f"""\
exports:
  - name: Lifetime value
    connection: CM Shared
    list_id: {world.cm.list_id}
    email_column: email
    segments: [Lifetime value]
    attributes:
      - {{column: segment.lifetime_value, target: LifetimeValue}}
    create_missing_fields: true
"""
    wrong = SQL_FILE + export.replace("segment.lifetime_value", "segment.spent")
    with pytest.raises(ConfigProblems) as caught:
        apply.plan(runtime=world.runtime, actor=admin(world.runtime), text=wrong)
    (problem,) = caught.value.problems
    assert problem.path == "exports[0].attributes"
    assert "'segment.spent' is not returned by the export's SQL or dbt segments" in problem.message
    assert "they return: segment.lifetime_value" in problem.message

    apply.apply(runtime=world.runtime, actor=admin(world.runtime), text=SQL_FILE + export)
    with world.runtime.readers() as session:
        stored = state.current(session)
    (made,) = [e for e in stored["exports"] if e["name"] == "Lifetime value"]
    assert made["attributes"] == [{"column": "segment.lifetime_value", "target": "[LifetimeValue]"}]
