"""Configuration as code, end to end: a configured deployment exported, applied to an empty one
(secrets from the environment, lists checked on the sandbox), exported again; broken files."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from exports.world import World, make_person
from segmentsync.auth.models import AuditEntry, Role, User
from segmentsync.cli import app
from segmentsync.config import state
from segmentsync.db import transaction
from segmentsync.exports.schemas import AttributeMap
from segmentsync.runtime import Runtime
from segmentsync.scheduling import schedule

Env = dict[str, str]


def environment(runtime: Runtime, **more: str) -> Env:
    settings = runtime.settings
    assert settings.secret_key is not None
    return {
        "SEGMENTSYNC_DATA_DIR": str(settings.data_dir),
        "SEGMENTSYNC_DATABASE_URL": settings.resolved_database_url,
        "SEGMENTSYNC_SECRET_KEY": settings.secret_key.get_secret_value(),
        "SEGMENTSYNC_CAMPAIGN_MONITOR_API_URL": settings.campaign_monitor_api_url,
        "SEGMENTSYNC_CAMPAIGN_MONITOR_OAUTH_URL": settings.campaign_monitor_oauth_url,
        "SEGMENTSYNC_CONSTANT_CONTACT_API_URL": settings.constant_contact_api_url,
        "SEGMENTSYNC_CONSTANT_CONTACT_OAUTH_URL": settings.constant_contact_oauth_url,
        "SEGMENTSYNC_AS": "ada@example.com",
        **more,
    }


def cli(env: Env, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def secrets(world: World) -> Env:
    """The secrets of the world's connections, under the names `config export` gives them."""
    cm, cc = world.cm.credentials, world.cc.credentials
    return {
        "CM_SHARED_API_KEY": cm["ApiKey"],
        "CM_ADMINS_API_KEY": cm["ApiKey"],
        "CC_MAIN_ACCESS_TOKEN": cc["access_token"],
        "CC_MAIN_REFRESH_TOKEN": cc["refresh_token"],
        "CC_MAIN_OAUTH_CLIENT_SECRET": cc["client_secret"],
    }


def configure(world: World) -> None:
    """Deployment A: the world's segments and connections, two exports and a schedule."""
    world.create(
        world.form(
            attributes=[AttributeMap(column="first_name", target="Name")],
            schedule_mode="cron",
            cron="0 6 * * 1-5",
            timezone="Europe/Warsaw",
        )
    )
    world.create(world.cc_form(segment_ids=[world.segments["LV"], world.segments["FI"]], sync_mode="mirror"))
    with transaction(world.runtime.sessions) as session:
        schedule.update(
            session=session, actor=None, now=world.runtime.clock(),
            data=schedule.ScheduleIn(enabled=True, frequency="weekly", weekdays=[0, 3], times=["06:00", "18:30"], timezone="Europe/Warsaw"),
        )  # fmt: skip


def stored(runtime: Runtime) -> dict[str, Any]:
    with runtime.readers() as session:
        return state.current(session)


def test_export_apply_to_an_empty_deployment_export_again(world: World, empty_runtime: Runtime) -> None:
    configure(world)
    env_a = environment(world.runtime)
    code, exported, errors = cli(env_a, "config", "export")
    assert code == 0, errors
    assert "${CM_SHARED_API_KEY}" in exported
    assert world.cm.credentials["ApiKey"] not in exported  # no secret in the file
    make_person(empty_runtime, "ada@example.com", Role.ADMIN)
    env_b = environment(empty_runtime, **secrets(world))

    code, planned, errors = cli(env_b, "config", "plan", "-", "--json", input=exported)
    assert code == 0, errors
    changes = json.loads(planned)["changes"]
    assert {(c["kind"], c["name"], c["action"]) for c in changes} >= {
        ("segment", "Country PL", "create"), ("connection", "CC Main", "create"),
        ("export", "Newsletter PL", "create"), ("schedule", "system", "update"),
    }  # fmt: skip
    assert stored(empty_runtime)["exports"] == []  # a plan writes nothing

    code, applied, errors = cli(env_b, "config", "apply", "-", "--yes", "--json", input=exported)
    assert code == 0, errors
    assert json.loads(applied)["changes"] == changes

    code, again, errors = cli(env_b, "config", "export")
    assert code == 0, errors
    assert again == exported
    code, planned, errors = cli(env_b, "config", "plan", "-", "--json", "--detailed-exitcode", input=exported)
    assert (code, json.loads(planned)) == (0, {"changes": []})
    code, applied, errors = cli(env_b, "config", "apply", "-", "--yes", "--json", input=exported)
    assert (code, json.loads(applied)) == (0, {"changes": []})  # idempotent


BROKEN = """\
version: 1
segments:
  - name: Country PL
    colour: red
    rules:
      items:
        - {column: country, operator: in, value: [PL]}
connections:
  - name: CM New
    type: campaign_monitor
    consent: true
    auth:
      method: api_key
      client_id: CLIENT_ID
      api_key: ${NOT_SET_ANYWHERE}
"""


def test_a_broken_file_gives_one_message_per_problem_with_its_line_and_changes_nothing(world: World) -> None:
    configure(world)
    env = environment(world.runtime, **secrets(world))
    before = stored(world.runtime)

    code, _, errors = cli(env, "config", "apply", "-", "--yes", input="version: 1\nsegments:\n  - name: [x\n")
    assert code == 1
    assert errors.startswith("error: line 3: not valid YAML")

    code, _, errors = cli(
        env, "config", "plan", "-", input=BROKEN.replace("CLIENT_ID", world.cm.credentials["ClientID"])
    )
    assert code == 1
    assert errors.splitlines() == ["error: line 4: segments[0].colour: unknown key"]

    fixed = BROKEN.replace("CLIENT_ID", world.cm.credentials["ClientID"]).replace("    colour: red\n", "")
    code, _, errors = cli(env, "config", "apply", "-", "--yes", "--json", input=fixed)
    assert code == 1
    problems = json.loads(errors)["error"]["details"]["problems"]
    assert problems == [
        {
            "line": 14,
            "path": "connections[0].auth.api_key",
            "message": "the environment variable NOT_SET_ANYWHERE is not set",
        }
    ]

    code, exported, _ = cli(env, "config", "export")
    gone = exported.replace(world.cm.list_id, "f" * 32).replace(
        "sync_mode: add_update", "sync_mode: mirror", 1
    )
    gone = gone.replace("email_column: email\n", "email_column: no_such_column\n", 1)
    code, _, errors = cli(env, "config", "apply", "-", "--yes", input=gone)
    assert code == 1
    lines = errors.splitlines()
    assert len(lines) == 2, errors
    list_line = 1 + next(n for n, text in enumerate(exported.splitlines()) if world.cm.list_id in text)
    assert any(text.startswith(f"error: line {list_line}: exports[") and "list_id" in text for text in lines)
    assert any("no_such_column" in text and "email_column" in text for text in lines), errors
    assert stored(world.runtime) == before  # nothing changed


def test_edits_and_prune_go_through_the_services_with_audit_entries(world: World) -> None:
    configure(world)
    make_person(world.runtime, "bob@example.com", Role.ADMIN)
    env = environment(world.runtime, SEGMENTSYNC_AS="bob@example.com")
    code, exported, errors = cli(env, "config", "export")
    assert code == 0, errors
    edited = (
        exported.replace("  - name: Country RO\n", "  - name: Country Romania\n")  # renamed: one out, one in
        .replace("resubscribe: false", "resubscribe: true", 1)  # Contacts LV
        .replace("export_user: ada@example.com", "export_user: bob@example.com", 1)  # CC Main: bob applies
    )
    code, planned, errors = cli(env, "config", "plan", "-", "--prune", "--json", input=edited)
    assert code == 0, errors
    assert json.loads(planned)["changes"] == [
        {"kind": "segment", "name": "Country Romania", "action": "create", "fields": json.loads(planned)["changes"][0]["fields"]},
        {"kind": "segment", "name": "Country RO", "action": "remove", "fields": json.loads(planned)["changes"][1]["fields"]},
        {"kind": "connection", "name": "CC Main", "action": "update", "fields": {"export_user": ["ada@example.com", "bob@example.com"]}},
        {"kind": "export", "name": "Contacts LV", "action": "update", "fields": {"resubscribe": [False, True]}},
    ]  # fmt: skip
    # Without --prune nothing is removed.
    code, applied, errors = cli(env, "config", "apply", "-", "--yes", "--json", input=edited)
    assert [c["action"] for c in json.loads(applied)["changes"]] == ["create", "update", "update"]
    assert "Country RO" in [s["name"] for s in stored(world.runtime)["segments"]]
    code, applied, errors = cli(env, "config", "apply", "-", "--yes", "--prune", "--json", input=edited)
    assert [(c["action"], c["name"]) for c in json.loads(applied)["changes"]] == [("remove", "Country RO")]
    assert "Country RO" not in [s["name"] for s in stored(world.runtime)["segments"]]
    # Each change is in the audit log, by the admin who applied it.
    with world.runtime.readers() as session:
        entries = session.execute(
            sa.select(AuditEntry.action, AuditEntry.object_label, User.email)
            .join(User, User.id == AuditEntry.actor_id)
            .where(User.email == "bob@example.com")
            .order_by(AuditEntry.id)
        ).all()
    assert [tuple(e) for e in entries] == [
        ("segment.create", "Country Romania", "bob@example.com"),
        ("connection.export_user", "CC Main", "bob@example.com"),
        ("export.update", "Contacts LV", "bob@example.com"),
        ("segment.delete", "Country RO", "bob@example.com"),
    ]
    # Ada cannot make Bob the export user of another connection: only yourself.
    code, _, errors = cli(
        environment(world.runtime), "config", "apply", "-", "--yes",
        input=edited.replace("export_user: ada@example.com", "export_user: bob@example.com", 1),
    )  # fmt: skip
    assert code == 1
    assert "only the admin who applies the file can become the export user" in errors
