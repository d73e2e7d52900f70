"""SQL and dbt segments through the REST API and the CLI, on both metadata stores: created, checked,
counted, refreshed (with history), previewed, changed; who may write SQL; the dbt manifest and its
models as the dbt tab shows them; a renamed dbt relation followed on the next refresh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.test_segments_api import token  # tests/ is on sys.path (rootdir)
from segmentsync.api.app import create_app
from segmentsync.auth.models import Role
from segmentsync.cli import app as cli_app
from segmentsync.profiles import store
from segmentsync.runtime import Runtime

from .conftest import duckdb_source
from .orders import BIG_SPENDERS, SEGMENT_SQL, add_orders, create_view, drop_view

SEGMENTS = "/api/v1/segments"


@pytest.fixture
def api(runtime: Runtime) -> TestClient:
    add_orders(duckdb_source(store.embedded_path(runtime.settings)))
    return TestClient(create_app(runtime))


def error(answer: Any) -> dict[str, Any]:
    body: dict[str, Any] = answer.json()["error"]
    return body


def test_sql_segment_lifecycle(api: TestClient, runtime: Runtime) -> None:
    editor = token(runtime, "c@example.com", Role.CONTRIBUTOR)
    created = api.post(
        SEGMENTS, json={"name": "Big spenders", "kind": "sql", "sql": SEGMENT_SQL}, headers=editor
    )
    assert created.status_code == 201, created.text
    segment = created.json()
    assert (segment["kind"], segment["sql"], segment["rules"]) == ("sql", SEGMENT_SQL, None)
    assert segment["rule_text"] == "SQL: -- profiles whose orders add up to more than 100"
    sid = segment["id"]

    refreshed = api.post(f"{SEGMENTS}/{sid}/refresh", headers=editor).json()
    assert (refreshed["member_count"], refreshed["error"]) == (len(BIG_SPENDERS), None)
    history = api.get(f"{SEGMENTS}/{sid}/refreshes", headers=editor).json()
    assert [entry["member_count"] for entry in history["items"]] == [len(BIG_SPENDERS)]
    preview = api.get(f"{SEGMENTS}/{sid}/preview?columns=email", headers=editor).json()
    assert preview["rows"] == [
        {"profile_id": 1, "email": "a@x.pl"},
        {"profile_id": 12, "email": "ann@gmail.com"},
    ]
    assert api.get(f"{SEGMENTS}/{sid}/count", headers=editor).json()["member_count"] == 2

    wider = SEGMENT_SQL.replace("> 100", ">= 100")  # profile 2 spent exactly 100
    changed = api.patch(f"{SEGMENTS}/{sid}", json={"sql": wider}, headers=editor)
    assert changed.status_code == 200, changed.text
    assert changed.json()["member_count"] is None  # a new query forgets the old count
    assert api.get(f"{SEGMENTS}/{sid}/count", headers=editor).json()["member_count"] == 3

    # the same segment made a rule segment, and back
    rule = {"items": [{"column": "country", "operator": "eq", "value": "PL"}]}
    as_rule = api.patch(f"{SEGMENTS}/{sid}", json={"rules": rule}, headers=editor).json()
    assert (as_rule["kind"], as_rule["sql"], as_rule["rule_text"]) == ("rule", None, "country = 'PL'")


def test_unsaved_sql_is_checked_counted_and_previewed(api: TestClient, runtime: Runtime) -> None:
    editor = token(runtime, "c@example.com", Role.CONTRIBUTOR)
    checked = api.post(f"{SEGMENTS}/sql/check", json={"sql": SEGMENT_SQL}, headers=editor)
    assert checked.json() == {"columns": ["profile_id"]}
    assert (
        api.post(f"{SEGMENTS}/sql/count", json={"sql": SEGMENT_SQL}, headers=editor).json()["member_count"]
        == 2
    )
    rows = api.post(
        f"{SEGMENTS}/sql/preview?columns=country", json={"sql": SEGMENT_SQL}, headers=editor
    ).json()
    assert rows["rows"] == [{"profile_id": 1, "country": "PL"}, {"profile_id": 12, "country": "PL"}]


BAD_QUERIES = [
    ("SELECT profile_id FROM profiles;\nDROP TABLE profiles", "unsafe_sql", (2, 1), "one statement"),
    ("SELECT email FROM profiles", "sql_without_key", None, "must return the profile key column"),
    ("SELECT profile_id FROM nowhere", "sql_failed", None, "nowhere"),
    ("SELECT *\nFROM read_csv('/etc/passwd')", "unsafe_sql", (2, 6), "read_csv"),
    ("SELECT profile_id\nFROM profiles\nWHERE", "invalid_sql", (3, 1), "cannot be parsed"),
]


def test_a_bad_query_is_a_clear_422_naming_where(api: TestClient, runtime: Runtime) -> None:
    editor = token(runtime, "c@example.com", Role.CONTRIBUTOR)
    for sql, code, where, words in BAD_QUERIES:  # one app for all: each answer is independent
        answer = api.post(SEGMENTS, json={"name": "Bad", "sql": sql}, headers=editor)
        assert answer.status_code == 422, answer.text
        found = error(answer)
        assert (found["code"], found["field"]) == (code, "sql"), sql
        assert words in found["message"]
        if where is not None:
            assert (found["details"]["line"], found["details"]["column"]) == where
            assert found["message"].startswith(f"line {where[0]}, column {where[1]}: ")
    assert api.get(SEGMENTS, headers=editor).json()["total"] == 0  # nothing saved


def test_the_definition_must_fit_the_kind(api: TestClient, runtime: Runtime) -> None:
    editor = token(runtime, "c@example.com", Role.CONTRIBUTOR)
    both = api.post(
        SEGMENTS,
        json={"name": "X", "kind": "sql", "sql": SEGMENT_SQL, "rules": {"items": []}},
        headers=editor,
    )
    assert both.status_code == 422
    assert "a sql segment takes sql, not rules" in both.text
    missing = api.post(SEGMENTS, json={"name": "X", "kind": "dbt"}, headers=editor)
    assert missing.status_code == 422
    assert "a dbt segment needs dbt_model" in missing.text


def test_an_admin_may_restrict_sql_segments_to_admins(api: TestClient, runtime: Runtime) -> None:
    admin = token(runtime, "a@example.com", Role.ADMIN)
    editor = token(runtime, "c@example.com", Role.CONTRIBUTOR)
    viewer = token(runtime, "v@example.com", Role.VIEWER)
    assert api.post(SEGMENTS, json={"name": "V", "sql": SEGMENT_SQL}, headers=viewer).status_code == 403
    assert api.get(f"{SEGMENTS}/sql/policy", headers=viewer).json() == {"admins_only": False}
    assert api.put(f"{SEGMENTS}/sql/policy", json={"admins_only": True}, headers=editor).status_code == 403

    assert api.put(f"{SEGMENTS}/sql/policy", json={"admins_only": True}, headers=admin).status_code == 200
    refused = api.post(SEGMENTS, json={"name": "C", "sql": SEGMENT_SQL}, headers=editor)
    assert refused.status_code == 403
    assert error(refused)["code"] == "sql_segments_admins_only"
    assert api.post(f"{SEGMENTS}/sql/preview", json={"sql": SEGMENT_SQL}, headers=editor).status_code == 403
    rule = api.post(SEGMENTS, json={"name": "Rule", "rules": {"items": []}}, headers=editor)
    assert rule.status_code == 201  # rules stay open to contributors
    made = api.post(SEGMENTS, json={"name": "A", "sql": SEGMENT_SQL}, headers=admin)
    assert made.status_code == 201
    # the contributor may still rename the admin's SQL segment, not change its query
    sid = made.json()["id"]
    assert api.patch(f"{SEGMENTS}/{sid}", json={"name": "A2"}, headers=editor).status_code == 200
    assert (
        api.patch(f"{SEGMENTS}/{sid}", json={"sql": "SELECT 1 AS profile_id"}, headers=editor).status_code
        == 403
    )


def test_dbt_segment_follows_the_manifest(
    api: TestClient, runtime: Runtime, dbt_manifest: Path, tmp_path: Path
) -> None:
    admin = token(runtime, "a@example.com", Role.ADMIN)
    editor = token(runtime, "c@example.com", Role.CONTRIBUTOR)
    profiles_file = store.embedded_path(runtime.settings)
    create_view(profiles_file, "big_spenders_v1")  # the relation the manifest names
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(dbt_manifest.read_bytes())

    no_manifest = api.post(
        SEGMENTS, json={"name": "D", "kind": "dbt", "dbt_model": "big_spenders"}, headers=editor
    )
    assert no_manifest.status_code == 422
    assert "no dbt manifest is set" in error(no_manifest)["message"]
    assert api.put(f"{SEGMENTS}/dbt", json={"manifest": str(manifest)}, headers=editor).status_code == 403
    bad = api.put(f"{SEGMENTS}/dbt", json={"manifest": str(tmp_path / "missing.json")}, headers=admin)
    assert bad.status_code == 422
    assert "run `dbt parse`" in error(bad)["message"]

    listed = api.put(f"{SEGMENTS}/dbt", json={"manifest": str(manifest)}, headers=admin).json()
    models = {model["name"]: model for model in listed["models"]}
    big = models["big_spenders"]
    assert big["description"] == "Profiles whose orders add up to more than 100."
    assert big["relation"] == '"profiles"."main"."big_spenders_v1"'
    assert big["columns"] == [{"name": "profile_id", "description": "The profile's key.", "data_type": None}]
    assert big["tests"] == ["not_null(profile_id)", "unique(profile_id)"]
    assert listed["dbt_version"].startswith("1.")
    assert api.get(f"{SEGMENTS}/dbt", headers=editor).json() == listed  # what the dbt tab shows

    ephemeral = api.post(SEGMENTS, json={"name": "E", "dbt_model": "scratch"}, headers=editor)
    assert (ephemeral.status_code, error(ephemeral)["code"]) == (422, "dbt_model_ephemeral")
    unknown = api.post(SEGMENTS, json={"name": "U", "dbt_model": "big_spender"}, headers=editor)
    assert unknown.status_code == 404
    assert "did you mean 'big_spenders'?" in error(unknown)["message"]

    created = api.post(SEGMENTS, json={"name": "Big (dbt)", "dbt_model": "big_spenders"}, headers=editor)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert created.json()["rule_text"] == "dbt model big_spenders"
    assert api.post(f"{SEGMENTS}/{sid}/refresh", headers=editor).json()["member_count"] == 2

    # dbt renames the relation (a new alias): the next refresh reads the manifest again and follows
    data = json.loads(manifest.read_text())
    data["nodes"]["model.shop.big_spenders"]["alias"] = "big_spenders_v2"
    manifest.write_text(json.dumps(data))
    create_view(profiles_file, "big_spenders_v2", SEGMENT_SQL.replace("> 100", ">= 100"))
    drop_view(profiles_file, "big_spenders_v1")
    assert api.post(f"{SEGMENTS}/{sid}/refresh", headers=editor).json()["member_count"] == 3
    # and a relation that is gone is a refresh error in the history, not a failure
    drop_view(profiles_file, "big_spenders_v2")
    failed = api.post(f"{SEGMENTS}/{sid}/refresh", headers=editor).json()
    assert failed["member_count"] is None
    assert "big_spenders_v2" in failed["error"]


def test_cli_creates_sql_and_dbt_segments(runtime: Runtime, dbt_manifest: Path) -> None:
    profiles_file = store.embedded_path(runtime.settings)
    add_orders(duckdb_source(profiles_file))
    create_view(profiles_file, "big_spenders_v1")
    token(runtime, "boss@example.com", Role.ADMIN)
    settings = runtime.settings
    env = {
        "SEGMENTSYNC_DATA_DIR": str(settings.data_dir),
        "SEGMENTSYNC_DATABASE_URL": settings.resolved_database_url,
        "SEGMENTSYNC_SECRET_KEY": settings.secret_key.get_secret_value() if settings.secret_key else "",
        "COLUMNS": "200",
    }
    cli = CliRunner(env=env)
    made = cli.invoke(cli_app, ["segments", "create", "Big", "--sql", "-"], input=SEGMENT_SQL)
    assert made.exit_code == 0, made.output
    assert "Created segment 'Big' (id 1): SQL: -- profiles whose orders" in made.stdout
    hostile = cli.invoke(
        cli_app, ["segments", "create", "Bad", "--sql", "-"], input="SELECT 1 AS profile_id; PRAGMA x"
    )
    assert hostile.exit_code == 1
    assert "line 1, column 25: only one statement is allowed" in hostile.stderr

    assert cli.invoke(cli_app, ["dbt", "set-manifest", str(dbt_manifest)]).exit_code == 0
    shown = cli.invoke(cli_app, ["dbt", "show", "big_spenders"])
    assert '"profiles"."main"."big_spenders_v1"' in shown.stdout
    assert "Tests: not_null(profile_id), unique(profile_id)" in shown.stdout
    dbt = cli.invoke(cli_app, ["segments", "create", "Big dbt", "--dbt-model", "big_spenders", "--json"])
    assert dbt.exit_code == 0, dbt.output
    assert json.loads(dbt.stdout)["kind"] == "dbt"
    counted = cli.invoke(cli_app, ["segments", "refresh", "--all", "--json"])
    assert [row["member_count"] for row in json.loads(counted.stdout)] == [2, 2]


SPENT_SQL = """
SELECT p.profile_id, sum(o.amount) AS spent, max(o.order_id) AS last_order
FROM profiles AS p JOIN orders AS o ON o.profile_id = p.profile_id
GROUP BY p.profile_id
"""


def test_a_segments_columns_besides_the_key_are_offered_to_exports(
    api: TestClient, runtime: Runtime, dbt_manifest: Path
) -> None:
    viewer = token(runtime, "v@example.com", Role.VIEWER)
    editor = token(runtime, "c@example.com", Role.CONTRIBUTOR)
    created = api.post(SEGMENTS, json={"name": "Spent", "sql": SPENT_SQL}, headers=editor)
    assert created.status_code == 201, created.text
    found = api.get(f"{SEGMENTS}/{created.json()['id']}/columns", headers=viewer)
    assert found.status_code == 200, found.text
    assert found.json() == {
        "segment_id": created.json()["id"],
        "kind": "sql",
        "columns": [
            {"name": "segment.spent", "column": "spent", "type": "float"},
            {"name": "segment.last_order", "column": "last_order", "type": "integer"},
        ],
    }
    rule = api.post(SEGMENTS, json={"name": "All", "rules": {"items": []}}, headers=editor).json()
    assert api.get(f"{SEGMENTS}/{rule['id']}/columns", headers=viewer).json()["columns"] == []
    assert error(api.get(f"{SEGMENTS}/999/columns", headers=viewer))["code"] == "segment_not_found"

    # a dbt model's relation: its columns besides the key likewise
    create_view(store.embedded_path(runtime.settings), "big_spenders_v1", SPENT_SQL)
    admin = token(runtime, "a@example.com", Role.ADMIN)
    assert api.put(f"{SEGMENTS}/dbt", json={"manifest": str(dbt_manifest)}, headers=admin).status_code == 200
    model = api.post(SEGMENTS, json={"name": "D", "dbt_model": "big_spenders"}, headers=editor)
    assert model.status_code == 201, model.text
    columns = api.get(f"{SEGMENTS}/{model.json()['id']}/columns", headers=viewer).json()["columns"]
    assert [c["name"] for c in columns] == ["segment.spent", "segment.last_order"]
