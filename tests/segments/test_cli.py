"""``segmentsync segments …`` end to end: real metadata store, real DuckDB profile file."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from segmentsync.auth.models import Role, User
from segmentsync.db import transaction
from segmentsync.profiles import store
from segmentsync.runtime import Runtime
from segmentsync.segments.cli import app

from .conftest import duckdb_source

RULE = '{"items": [{"column": "country", "operator": "in", "value": ["PL", "LV"]}]}'


@pytest.fixture
def cli(runtime: Runtime) -> CliRunner:
    duckdb_source(store.embedded_path(runtime.settings))
    settings = runtime.settings
    secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
    env = {
        "SEGMENTSYNC_DATA_DIR": str(settings.data_dir),
        "SEGMENTSYNC_DATABASE_URL": settings.resolved_database_url,
        "SEGMENTSYNC_SECRET_KEY": secret,
        "COLUMNS": "200",
    }
    return CliRunner(env=env)


def add_user(runtime: Runtime, email: str, role: Role) -> None:
    with transaction(runtime.sessions) as session:
        session.add(User(email=email, role=role))


def test_without_an_admin_the_cli_says_so(cli: CliRunner) -> None:
    result = cli.invoke(app, ["create", "Baltic", "--rule", RULE])
    assert result.exit_code == 1
    assert "there is no active admin" in result.stderr


def test_create_list_refresh_preview_count_edit_delete(cli: CliRunner, runtime: Runtime) -> None:
    add_user(runtime, "boss@example.com", Role.ADMIN)
    created = cli.invoke(app, ["create", "Baltic", "--rule", RULE, "--description", "PL and LV"])
    assert created.exit_code == 0, created.output
    assert "Created segment 'Baltic' (id 1): country in ('PL', 'LV')" in created.stdout

    refreshed = cli.invoke(app, ["refresh", "Baltic"])
    assert refreshed.exit_code == 0, refreshed.output
    assert "6" in refreshed.stdout

    listed = json.loads(cli.invoke(app, ["list", "--json"]).stdout)
    assert [(s["name"], s["member_count"]) for s in listed] == [("Baltic", 6)]

    shown = cli.invoke(app, ["show", "baltic"])
    assert "Used by exports: none" in shown.stdout
    assert "6 members" in shown.stdout

    preview = json.loads(
        cli.invoke(app, ["preview", "1", "--limit", "2", "--columns", "city", "--json"]).stdout
    )
    assert preview == [{"profile_id": 1, "city": "Warszawa"}, {"profile_id": 2, "city": "Rīga"}]

    assert "Baltic: 6 members" in cli.invoke(app, ["count", "Baltic"]).stdout

    edited = cli.invoke(app, ["edit", "Baltic", "--name", "Poles", "--rule",
                              '{"items": [{"column": "country", "operator": "eq", "value": "PL"}]}'])  # fmt: skip
    assert edited.exit_code == 0, edited.output
    assert "Saved segment 'Poles': country = 'PL'" in edited.stdout

    deleted = cli.invoke(app, ["delete", "Poles", "--yes"])
    assert deleted.exit_code == 0
    assert "Deleted segment 'Poles'" in deleted.stdout
    assert json.loads(cli.invoke(app, ["list", "--json"]).stdout) == []


def test_errors_are_one_clear_line(cli: CliRunner, runtime: Runtime) -> None:
    add_user(runtime, "boss@example.com", Role.ADMIN)
    add_user(runtime, "viewer@example.com", Role.VIEWER)
    typo = cli.invoke(
        app, ["create", "X", "--rule", '{"items": [{"column": "contry", "operator": "eq", "value": 1}]}']
    )
    assert typo.exit_code == 1
    assert "error: rules.items[0]: unknown column 'contry'; did you mean 'country' or 'city'?" in typo.stderr
    assert "Traceback" not in typo.output
    bad_json = cli.invoke(app, ["create", "X", "--rule", "{"])
    assert bad_json.exit_code == 1
    assert "error: rules: Invalid JSON" in bad_json.stderr
    viewer = cli.invoke(app, ["create", "X", "--rule", RULE, "--as", "viewer@example.com"])
    assert viewer.exit_code == 1
    assert "does not allow segments.edit" in viewer.stderr
    missing = cli.invoke(app, ["show", "Nope"])
    assert missing.exit_code == 1
    assert "no segment named 'Nope'" in missing.stderr
    both = cli.invoke(app, ["refresh", "X", "--all"])
    assert both.exit_code == 1
    assert "or give --all" in both.stderr


def test_rule_file_and_refresh_all(cli: CliRunner, runtime: Runtime, tmp_path: object) -> None:
    add_user(runtime, "boss@example.com", Role.ADMIN)
    from pathlib import Path

    rule_file = Path(str(tmp_path)) / "rule.json"
    rule_file.write_text('{"items": [{"column": "orders", "operator": "ge", "value": 5}]}')
    assert cli.invoke(app, ["create", "Loyal", "--rule-file", str(rule_file)]).exit_code == 0
    assert cli.invoke(app, ["create", "Baltic", "--rule", RULE]).exit_code == 0
    result = cli.invoke(app, ["refresh", "--all"])
    assert result.exit_code == 0, result.output
    listed = json.loads(cli.invoke(app, ["list", "--json"]).stdout)
    assert {s["name"]: s["member_count"] for s in listed} == {"Baltic": 6, "Loyal": 4}
