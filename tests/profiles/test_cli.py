"""``segmentsync profiles load|generate|show`` through the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from segmentsync.profiles.cli import app


@pytest.fixture
def cli(tmp_path: Path) -> CliRunner:
    return CliRunner(env={"SEGMENTSYNC_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})


def test_generate_then_show(cli: CliRunner) -> None:
    generated = cli.invoke(app, ["generate", "--rows", "500", "--seed", "9", "--as-of", "2025-06-01"])
    assert generated.exit_code == 0, generated.output
    assert "Generated 500 profiles into 'profiles'" in generated.stdout
    shown = cli.invoke(app, ["show"])
    assert shown.exit_code == 0, shown.output
    assert "profiles — 500 profiles, key 'profile_id'" in shown.stdout
    assert "last_purchase_at" in shown.stdout
    assert "timestamp" in shown.stdout
    assert "total_spend" in shown.stdout
    assert "decimal(12, 2)" in shown.stdout


def test_load_and_its_errors(cli: CliRunner, tmp_path: Path) -> None:
    good = tmp_path / "people.csv"
    good.write_text("id,email\n1,a@x\n2,b@x\n")
    loaded = cli.invoke(app, ["load", str(good), "--key", "id", "--table", "people"])
    assert loaded.exit_code == 0, loaded.output
    assert "Loaded 2 profiles into 'people' (replace)" in loaded.stdout
    again = cli.invoke(app, ["load", str(good), "--key", "id", "--table", "people", "--mode", "append"])
    assert again.exit_code == 1
    assert "2 key value(s) are in the table 'people' already" in again.stderr
    missing_key = cli.invoke(app, ["load", str(good)])
    assert missing_key.exit_code == 1
    assert "error: people.csv has no key column 'profile_id'" in missing_key.stderr
    assert "Traceback" not in missing_key.output
    shown = cli.invoke(app, ["show", "--table", "people"], env={"SEGMENTSYNC_PROFILES_KEY": "id"})
    assert "people — 2 profiles, key 'id'" in shown.stdout
    bad_mode = cli.invoke(app, ["load", str(good), "--mode", "merge"])
    assert bad_mode.exit_code == 2


def test_show_before_anything_is_loaded(cli: CliRunner) -> None:
    result = cli.invoke(app, ["show"])
    assert result.exit_code == 1
    assert "there is no profile store at" in result.stderr


def test_load_refuses_a_non_embedded_source(cli: CliRunner, tmp_path: Path) -> None:
    file = tmp_path / "p.csv"
    file.write_text("profile_id\n1\n")
    env = {"SEGMENTSYNC_PROFILES_URL": "postgresql://u:pw@db.example/profiles"}
    result = cli.invoke(app, ["load", str(file)], env=env)
    assert result.exit_code == 1
    assert (
        "write into the embedded DuckDB store, but the profile source is a postgresql engine" in result.stderr
    )
