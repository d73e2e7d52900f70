"""The conventions every `segmentsync` command keeps: help with its environment variables,
`--json` wherever something is printed (and errors as JSON then), one-line errors, exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from exports.world import World
from segmentsync.cli import app
from segmentsync.profiles.cli import app as profiles_app
from segmentsync.terminal import EXIT_USAGE

# They run until stopped (a server, workers, the sandbox, the demo): nothing to print as JSON.
LONG_RUNNING = {"sandbox", "serve", "worker", "quickstart"}
# Not exercised below, and why (each is covered by its own area's tests).
NOT_EXERCISED = {
    "profiles load": "replaces the profile table (tests/profiles)",
    "profiles generate": "replaces the profile table (tests/profiles)",
    "connections create": "reads secrets from standard input (tests/connections)",
    "connections edit": "reads secrets from standard input (tests/connections)",
    "connections oauth-url": "needs an OAuth application (tests/connections)",
    "runs confirm": "needs a run stopped by the mirror guard (tests/exports)",
    "config apply": "tests/config",
    "webhooks redeliver": "needs a message that was sent (tests/notifications/test_cli.py)",
}


def commands() -> Iterator[tuple[str, Any]]:
    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), command

    yield from walk(typer.main.get_command(app), [])


def test_every_command_has_help_and_json_and_shows_its_environment_variables() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    words = " ".join(result.output.split())  # the help wraps at the terminal's width
    assert "SEGMENTSYNC_DATABASE_URL" in words
    assert "4 run awaiting confirmation" in words
    assert CliRunner().invoke(app, ["exports", "run", "--help"]).exit_code == 0
    missing_json = []
    root = typer.main.get_command(app)
    for name, command in commands():
        # What `segmentsync NAME --help` prints, rendered without a process per command.
        parent = typer.Context(root, info_name="segmentsync")
        for word in name.split()[:-1]:
            parent = typer.Context(root.commands[word], info_name=word, parent=parent)  # type: ignore[attr-defined]
        text = command.get_help(typer.Context(command, info_name=name.split()[-1], parent=parent))
        assert command.help, name
        options = {opt for param in command.params for opt in param.opts}
        if "--as" in options:
            assert "SEGMENTSYNC_AS" in text, name
        if name.split()[0] not in LONG_RUNNING and "--json" not in options:
            missing_json.append(name)
    assert missing_json == []


def test_usage_errors_exit_2_and_speak_json_when_asked() -> None:
    result = CliRunner().invoke(app, ["runs", "list", "--limit", "0", "--json"])
    assert result.exit_code == EXIT_USAGE
    error = json.loads(result.stderr)["error"]
    assert (error["code"], error["exit_code"]) == ("usage", 2)
    assert "--limit" in error["message"]
    result = CliRunner().invoke(app, ["profiles", "load", "people.csv", "--delimiter", "'; DROP"])
    assert result.exit_code == EXIT_USAGE
    assert len(result.stderr.splitlines()) == 1
    assert "--delimiter" in result.stderr
    assert "Traceback" not in result.output


def test_json_mode_ends_with_its_command_line(tmp_path: Any) -> None:
    # One process, two command lines (as in tests or an embedding program): the second, without
    # --json, reports its error as a line of text, not as the first one's JSON.
    assert CliRunner().invoke(app, ["runs", "list", "--limit", "0", "--json"]).exit_code == EXIT_USAGE
    result = CliRunner().invoke(profiles_app, ["load", str(tmp_path / "absent.csv")])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: "), result.stderr


def test_an_unexpected_error_is_one_line_not_a_traceback(tmp_path: Any) -> None:
    # A data dir that is a file: the command cannot even open its store.
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(app, ["segments", "list"], env={"SEGMENTSYNC_DATA_DIR": str(blocker / "x")})
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ")


@pytest.fixture
def env(world: World, store_url: str) -> dict[str, str]:
    settings = world.runtime.settings
    assert settings.secret_key is not None
    return {
        "SEGMENTSYNC_DATA_DIR": str(settings.data_dir),
        "SEGMENTSYNC_DATABASE_URL": store_url,
        "SEGMENTSYNC_SECRET_KEY": settings.secret_key.get_secret_value(),
        "SEGMENTSYNC_CAMPAIGN_MONITOR_API_URL": settings.campaign_monitor_api_url,
        "SEGMENTSYNC_CONSTANT_CONTACT_API_URL": settings.constant_contact_api_url,
        "SEGMENTSYNC_CONSTANT_CONTACT_OAUTH_URL": settings.constant_contact_oauth_url,
    }


def test_json_output_of_every_command_parses(env: dict[str, str], world: World, tmp_path: Path) -> None:
    runner = CliRunner(env=env)
    exercised: set[str] = set()

    def call(*args: str, code: int = 0, input: str | None = None) -> Any:
        result = runner.invoke(app, [*args, "--json"], input=input)
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        words = [a for a in args if not a.startswith("-")]
        exercised.add(" ".join(words[:2]) if words[0] in GROUPS else words[0])
        return json.loads(result.stdout)

    assert call("version")["version"]
    assert call("profiles", "show")["rows"] == 40
    assert len(call("segments", "list")) == 5
    assert call("segments", "show", "Country PL")["name"] == "Country PL"
    assert call("segments", "count", "Country PL")["member_count"] == 10
    assert len(call("segments", "preview", "Country PL", "--limit", "2")) == 2
    assert call("segments", "refresh", "Country PL")[0]["member_count"] == 10
    rule = '{"items": [{"column": "country", "operator": "eq", "value": "RO"}]}'
    assert call("segments", "create", "Romania", "--rule", rule)["name"] == "Romania"
    assert call("segments", "edit", "Romania", "--description", "RO")["description"] == "RO"
    assert call("segments", "delete", "Romania", "--yes")["deleted"]["name"] == "Romania"
    created = call("users", "create", "bo@example.com", "--role", "contributor")
    assert created["password"]
    assert call("users", "set-role", "bo@example.com", "viewer")["role"] == "viewer"
    assert call("users", "deactivate", "bo@example.com")["is_active"] is False
    assert call("users", "activate", "bo@example.com")["is_active"] is True
    assert call("users", "set-password", "bo@example.com")["password"]
    token = call("users", "token", "bo@example.com")
    assert [t["id"] for t in call("users", "tokens", "bo@example.com")] == [token["id"]]
    assert call("users", "revoke-token", str(token["id"]))["revoked"] is True
    assert "bo@example.com" in [u["email"] for u in call("users", "list")]
    assert len(call("connections", "list")) == 3
    assert call("connections", "show", "CM Shared")["name"] == "CM Shared"
    assert world.cm.list_id in [item["list_id"] for item in call("connections", "lists", "CM Shared")]
    assert call("connections", "verify", "CC Main")["ok"] is True
    assert call("connections", "rotate-secrets")["re_encrypted"] >= 3
    export = call(
        "exports", "create", "--name", "PL", "--connection", "CM Shared", "--list", world.cm.list_id,
        "--email-column", "email", "--segment", "Country PL",
    )  # fmt: skip
    assert call("exports", "edit", "PL", "--resubscribe")["resubscribe"] is True
    assert call("exports", "show", "PL")["id"] == export["id"]
    assert [e["name"] for e in call("exports", "list")] == ["PL"]
    assert call("exports", "duplicate", "PL", "--name", "PL 2")["name"] == "PL 2"
    assert call("exports", "detach", "PL 2")["detached"] == "PL 2"
    assert call("exports", "attach", "PL 2", "--connection", "CM Shared")["connection"]["name"] == "CM Shared"
    assert call("exports", "remove", "PL 2", "--yes")["removed"] == "PL 2"
    queued = call("exports", "run", "PL")
    assert queued["status"] == "queued"
    assert call("runs", "cancel", str(queued["id"]))["status"] == "cancelled"
    finished = call("exports", "run", "PL", "--wait")
    assert (finished["status"], finished["counts"]["new"]) == ("succeeded", 10)
    assert call("runs", "show", str(finished["id"]))["id"] == finished["id"]
    assert len(call("runs", "list")) == 2
    assert len(call("runs", "rows", str(finished["id"]))) == 10
    assert [r["export_id"] for r in call("exports", "run-all")["queued"]] == [export["id"]]
    assert call("schedule", "show")["enabled"] is False
    assert call("schedule", "set", "--on", "--times", "06:00")["enabled"] is True
    exported = call("config", "export")
    assert [e["name"] for e in exported["exports"]] == ["PL"]
    assert call("config", "schema")["title"] == "segmentsync configuration"
    config = CliRunner(env=env).invoke(app, ["config", "export"]).stdout
    assert call("config", "plan", "-", input=config) == {"changes": []}
    hook = call("webhooks", "create", "https://example.com/segmentsync", "-e", "run.failed")
    assert hook["secret"].startswith("whsec_")
    assert call("webhooks", "update", str(hook["id"]), "--description", "on-call")["description"] == "on-call"
    assert [h["id"] for h in call("webhooks", "list")] == [hook["id"]]
    test = call("webhooks", "test", str(hook["id"]))
    assert [d["id"] for d in call("webhooks", "deliveries", str(hook["id"]))] == [test["id"]]
    assert call("webhooks", "rotate-secret", str(hook["id"]))["secret"] != hook["secret"]
    assert call("webhooks", "delete", str(hook["id"]))["deleted"] == hook["id"]
    assert call("alerts", "set", "PL", "--slow-minutes", "30")["rules"][3]["threshold"] == 30
    assert call("alerts", "show", "PL")["emails"] == []
    manifest = (
        tmp_path / "manifest.json"
    )  # dbt's shape, cut to what is read (tests/segments build a real one)
    manifest.write_text(json.dumps({"metadata": {"dbt_version": "1.11.0", "project_name": "shop"}, "nodes": {
        "model.shop.buyers": {"resource_type": "model", "name": "buyers", "package_name": "shop",
                              "database": "profiles", "schema": "main", "alias": "buyers",
                              "config": {"materialized": "view"}, "columns": {}},
    }}))  # fmt: skip
    assert call("dbt", "set-manifest", str(manifest))["models"] == 1
    assert [m["name"] for m in call("dbt", "models")] == ["buyers"]
    assert call("dbt", "show", "buyers")["name"] == "buyers"
    assert call("connections", "detach", "CM Admins")["detached"] == []
    assert call("connections", "remove", "CM Admins")["removed"] == "CM Admins"

    # Errors in --json mode: a JSON object on standard error, exit 1.
    result = runner.invoke(app, ["exports", "show", "nope", "--json"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert json.loads(result.stderr)["error"]["code"] == "not_found"

    expected = {
        name for name, _ in commands() if name.split()[0] not in LONG_RUNNING and name not in NOT_EXERCISED
    }
    assert expected - exercised == set()


GROUPS = {
    "profiles",
    "segments",
    "users",
    "connections",
    "exports",
    "runs",
    "schedule",
    "config",
    "webhooks",
    "alerts",
    "dbt",
}
