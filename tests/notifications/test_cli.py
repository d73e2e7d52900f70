"""`segmentsync webhooks …` and `segmentsync alerts …` against a real store (CliRunner, in-process)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from exports.world import World  # tests/ is on sys.path (rootdir)
from receivers import receiver
from segmentsync.cli import app

from .helpers import send_all, verified


def test_webhooks_and_alerts_from_the_command_line(world: World, store_url: str) -> None:
    settings = world.runtime.settings
    assert settings.secret_key is not None
    env = {
        "SEGMENTSYNC_DATA_DIR": str(settings.data_dir),
        "SEGMENTSYNC_DATABASE_URL": store_url,
        "SEGMENTSYNC_SECRET_KEY": settings.secret_key.get_secret_value(),
        "SEGMENTSYNC_WEBHOOKS_ALLOW_PRIVATE": "true",
        "COLUMNS": "200",
    }
    cli = CliRunner()
    with receiver() as hooks:
        made = cli.invoke(app, ["webhooks", "create", hooks.url, "-e", "run.failed", "--json"], env=env)
        assert made.exit_code == 0, made.output
        endpoint = json.loads(made.output)
        assert endpoint["events"] == ["run.failed"]
        listed = cli.invoke(app, ["webhooks", "list"], env=env)
        assert hooks.url in listed.output
        assert endpoint["secret"] not in listed.output
        assert cli.invoke(app, ["webhooks", "test", str(endpoint["id"])], env=env).exit_code == 0
        send_all(world)
        assert verified(endpoint["secret"], hooks.requests[0])["type"] == "webhook.test"  # type: ignore[index]
        shown = json.loads(
            cli.invoke(app, ["webhooks", "deliveries", str(endpoint["id"]), "--json"], env=env).output
        )
        assert [(d["status"], d["response_code"]) for d in shown] == [("delivered", 200)]
        again = cli.invoke(
            app, ["webhooks", "redeliver", str(endpoint["id"]), str(shown[0]["id"]), "--json"], env=env
        )
        assert json.loads(again.output)["status"] == "pending"
        send_all(world)
        assert [r.headers["webhook-id"] for r in hooks.requests] == [shown[0]["message_id"]] * 2
    refused = cli.invoke(app, ["webhooks", "create", "gopher://example.com"], env=env)
    assert refused.exit_code == 1
    assert "only http:// and https://" in refused.output
    as_viewer = cli.invoke(app, ["webhooks", "list", "--as", world.viewer.email], env=env)
    assert as_viewer.exit_code != 0
    assert "does not allow webhooks.manage" in as_viewer.output

    export_id = world.create(world.form()).export_id
    changed = cli.invoke(app, ["alerts", "set", str(export_id), "--slow-minutes", "20", "--off", "stale",
                               "--email", "ops@example.org", "--json"], env=env)  # fmt: skip
    assert changed.exit_code == 0, changed.output
    rules = {r["kind"]: r for r in json.loads(changed.output)["rules"]}
    assert (rules["slow"]["threshold"], rules["stale"]["enabled"]) == (20.0, False)
    shown_alerts = cli.invoke(app, ["alerts", "show", "Newsletter PL"], env=env)
    assert "ops@example.org" in shown_alerts.output
