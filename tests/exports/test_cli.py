"""`segmentsync exports …`, `runs …` and `schedule …` against a real store and the sandbox."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from segmentsync.cli import app
from segmentsync.settings import Settings

from .world import World

Env = dict[str, str]


@pytest.fixture
def env(world: World, store_url: str) -> Env:
    """The test's settings, as the environment of a command line."""
    settings: Settings = world.runtime.settings
    assert settings.secret_key is not None
    return {
        "SEGMENTSYNC_DATA_DIR": str(settings.data_dir),
        "SEGMENTSYNC_DATABASE_URL": store_url,
        "SEGMENTSYNC_SECRET_KEY": settings.secret_key.get_secret_value(),
        "SEGMENTSYNC_CAMPAIGN_MONITOR_API_URL": settings.campaign_monitor_api_url,
        "SEGMENTSYNC_CONSTANT_CONTACT_API_URL": settings.constant_contact_api_url,
        "SEGMENTSYNC_CONSTANT_CONTACT_OAUTH_URL": settings.constant_contact_oauth_url,
        "COLUMNS": "200",  # Rich tables: no truncated cells
    }


def run(env: Env, *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner(env=env).invoke(app, list(args), input=input)
    return result.exit_code, result.output


def create(env: Env, world: World, *extra: str) -> dict[str, Any]:
    code, output = run(
        env, "exports", "create", "--name", "Newsletter PL", "--connection", "CM Shared", "--list", world.cm.list_id,
        "--email-column", "email", "--segment", "Country PL", "-a", "first_name=Name", "--json", *extra,
    )  # fmt: skip
    assert code == 0, output
    created: dict[str, Any] = json.loads(output)
    return created


def test_create_list_show_edit_duplicate_detach_attach_remove(env: Env, world: World) -> None:
    created = create(env, world, "--schedule", "off")
    assert (created["list_name"], created["members"], created["permission"]) == ("CM Shared list", 10, "edit")
    code, output = run(env, "exports", "list")
    assert code == 0, output
    assert "Newsletter PL" in output
    assert "CM Shared" in output
    code, output = run(env, "exports", "list", "--json", "--as", "carl@example.com")
    assert [row["permission"] for row in json.loads(output)] == ["edit"]
    code, output = run(
        env, "exports", "edit", "Newsletter PL", "--schedule", "cron", "--cron", "0 6 * * *", "--json"
    )
    assert code == 0, output
    assert json.loads(output)["schedule"] == "Custom: 0 6 * * * (UTC)"
    code, output = run(env, "exports", "show", "Newsletter PL")
    assert code == 0, output
    assert "first_name → Name" in output
    code, output = run(env, "exports", "duplicate", "Newsletter PL", "--json")
    assert json.loads(output)["name"] == "Copy of Newsletter PL"
    code, output = run(env, "exports", "detach", "Copy of Newsletter PL")
    assert (code, "No connection" in output) == (0, True)
    code, output = run(env, "exports", "attach", "Copy of Newsletter PL", "--connection", "CC Main")
    assert code == 1
    assert "attach a Campaign Monitor connection" in output
    code, output = run(
        env, "exports", "attach", "Copy of Newsletter PL", "--connection", "CM Admins", "--json"
    )
    assert json.loads(output)["connection"]["name"] == "CM Admins"
    code, output = run(env, "exports", "remove", "Copy of Newsletter PL", "--yes")
    assert (code, output.strip()) == (0, "removed the export “Copy of Newsletter PL”")


def test_errors_are_one_line_and_exit_1(env: Env, world: World) -> None:
    code, output = run(
        env, "exports", "create", "--name", "X", "--connection", "CM Shared", "--list", "123",
        "--email-column", "email", "--segment", "Country PL",
    )  # fmt: skip
    assert code == 1
    assert "error:" in output
    assert "32 hexadecimal characters (field: list_id)" in output
    code, output = run(env, "exports", "create", "--name", "X", "--connection", "CM Shared", "--list", world.cm.list_id,
                       "--email-column", "email", "--segment", "Country PL", "--as", "vera@example.com")  # fmt: skip
    assert code == 1
    assert "does not allow exports.edit" in output
    code, output = run(env, "exports", "show", "Nothing")
    assert (code, "no export named 'Nothing'" in output) == (1, True)
    code, output = run(env, "exports", "create", "--name", "X", "--connection", "CM Shared", "--list", world.cm.list_id,
                       "--email-column", "email", "--segment", "Country PL", "-a", "first_name")  # fmt: skip
    assert (code, "COLUMN=FIELD" in output) == (1, True)


def test_run_wait_executes_here_with_a_progress_bar_and_counts(env: Env, world: World) -> None:
    create(env, world)
    code, output = run(env, "exports", "run", "Newsletter PL", "--wait", "--dry-run")
    assert code == 0, output
    assert "would new" in output
    code, output = run(env, "exports", "run", "Newsletter PL", "--wait")
    assert code == 0, output
    assert "succeeded" in output
    assert re.search(r"│ new +│ 10 +│", output)
    assert "batch 1/1" in output  # the progress bar
    code, output = run(env, "runs", "list", "--json")
    listed = json.loads(output)
    assert [(r["status"], r["dry_run"], r["counts"]["new"]) for r in listed] == [
        ("succeeded", False, 10),
        ("succeeded", True, 0),
    ]
    run_id = str(listed[0]["id"])
    code, output = run(env, "runs", "show", run_id)
    assert (code, "batches 1/1" in output) == (0, True)
    code, output = run(env, "runs", "rows", run_id, "--email", "person4@")
    assert "person4@example.com" in output
    code, output = run(env, "runs", "rows", run_id, "--csv")
    lines = list(csv.reader(io.StringIO(output)))
    assert lines[0][0] == "email"
    assert len(lines) == 11
    code, output = run(env, "runs", "rows", run_id, "--outcome", "lost")
    assert code == 2  # a usage error


def test_run_wait_exits_non_zero_unless_the_run_succeeded(env: Env, world: World) -> None:
    create(env, world)
    client = world.cm.credentials
    httpx.delete(
        f"{world.sandbox.campaign_monitor_api}/lists/{world.cm.list_id}.json",
        auth=(client["ApiKey"], "x"),
        timeout=10,
    ).raise_for_status()
    code, output = run(env, "exports", "run", "Newsletter PL", "--wait")
    assert code == 5, output  # failed: never 1 (an error of the command) nor 2 (a usage error)
    assert "failed" in output
    code, output = run(env, "exports", "run", "Newsletter PL")
    assert code == 0
    assert "queued run #" in output
    run_id = output.split("#")[1].split(";")[0]
    code, output = run(env, "runs", "cancel", run_id)
    assert (code, output.strip()) == (0, f"run #{run_id}: cancelled")


def test_run_all(env: Env, world: World) -> None:
    create(env, world)
    code, output = run(env, "exports", "run-all")
    assert code == 0, output
    assert "queued 1 run(s)" in output


def test_schedule_show_and_set(env: Env, world: World) -> None:
    code, output = run(env, "schedule", "show")
    assert (code, output.strip()) == (0, "System refresh: Off")
    code, output = run(
        env, "schedule", "set", "--on", "--times", "06:00,18:30", "--timezone", "Europe/Warsaw"
    )
    assert code == 0, output
    assert "System refresh: Every day at 06:00, 18:30 (Europe/Warsaw)" in output
    assert "CET" in output or "CEST" in output
    code, output = run(env, "schedule", "set", "--frequency", "weekly", "--days", "sat")
    assert "Every Sat at 06:00, 18:30 (Europe/Warsaw)" in output
    code, output = run(env, "schedule", "set", "--times", "25:00")
    assert (code, "not a time of day" in output) == (1, True)
    code, output = run(env, "schedule", "set", "--off", "--as", "carl@example.com")
    assert (code, "does not allow schedule.edit" in output) == (1, True)


def test_the_command_runs_an_export_without_importing_pandas(env: Env, world: World) -> None:
    """The `segmentsync` command's own entry point in a process of its own: with the profiles in
    DuckDB, the export succeeds and pandas was never loaded (``segmentsync.lean``)."""
    create(env, world)
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('loaded:', sorted(m for m in ('pandas', 'duckdb', 'pyarrow') if m in sys.modules)))\n"
        "from segmentsync.cli import main\n"
        "sys.argv = ['segmentsync', 'exports', 'run', 'Newsletter PL', '--wait']\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "succeeded" in done.stdout
    assert "loaded: ['duckdb', 'pyarrow']" in done.stdout
