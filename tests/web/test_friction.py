"""What got in a new user's way, fixed (TestClient, both metadata stores): errors as sentences
beside their fields, all at once; runs that say what they are doing; times in their own zone; no
raw JSON or internal codes on the pages. On SQLite: they check the pages' words; the services
behind them are tested on both stores by their own tests."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from reliability.scenario import ON_SQLITE  # tests/ is on sys.path (rootdir)
from segmentsync.connections import service as connections
from segmentsync.connections.models import ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionCreate
from segmentsync.db import transaction
from segmentsync.exports.models import Run, RunStatus
from segmentsync.scheduling.models import SystemRefresh

from .pages import field_error
from .test_pages import World, world  # noqa: F401  # the pages' world: users, profiles, the sandbox

pytestmark = ON_SQLITE


def test_every_problem_of_a_form_is_a_sentence_beside_its_field(world: World) -> None:  # noqa: F811
    pages = world.pages()
    pages.get("/connections/new")
    wizard = pages.post("/connections/new", {"name": " ", "step": "connect"}).text
    assert field_error(wizard, "type") == "Choose one of the offered values for Type."
    assert field_error(wizard, "name") == "Display name cannot be empty."  # as the form labels it
    assert "I agree" in field_error(wizard, "consent")  # all three at once

    pages.get("/segments/new")
    rule = {"op": "and", "items": [
        {"column": "country", "operator": "eq"},
        {"op": "or", "items": [{"column": "orders", "operator": "in", "value": []}]},
    ]}  # fmt: skip
    segment = pages.post("/segments/new", {"name": "", "rules": json.dumps(rule), "action": "save"}).text
    assert field_error(segment, "name") == "Name cannot be empty."
    rules = field_error(segment, "rules")
    assert "Condition 1 (country equals): give a value." in rules
    assert "Group 2 › condition 1 (orders is one of): give at least one value." in rules
    assert "items" not in rules
    assert 'data-error-path="rules.items.0"' in segment  # the builder marks the first

    pages.get("/exports/new")
    export = pages.post("/exports/new", {"name": ""}).text
    for field in ("name", "connection_id", "list_id", "email_column", "segment_ids"):
        assert field_error(export, field), field

    polish = world.pages(language="pl")
    polish.get("/connections/new")
    named = field_error(polish.post("/connections/new", {"name": "", "step": "connect"}).text, "name")
    assert "Wyświetlana nazwa" in named
    assert "cannot" not in named


def test_pages_say_what_happens_in_words_and_times_in_their_zone(world: World) -> None:  # noqa: F811
    connection_id = world.connection()
    pages = world.pages()
    pages.get("/segments/new")
    rule = '{"op": "and", "items": [{"column": "country", "operator": "eq", "value": "PL"}]}'
    segment_id = pages.post("/segments/new", {"name": "PL", "rules": rule, "action": "save"}).headers[
        "location"
    ]
    form = {"name": "Weekly", "connection_id": connection_id, "list_id": world.cm_list("PL"),
            "email_column": "email", "segment_ids": segment_id.rsplit("/", 1)[1]}  # fmt: skip
    export_id = pages.post("/exports/new", form).headers["location"].rsplit("/", 1)[1]
    run_id = pages.post(f"/exports/{export_id}/run", {}).headers["location"].rsplit("/", 1)[1]

    run = pages.get(f"/runs/{run_id}").text  # queued: no worker in this world
    assert "Waiting for a worker to start the run." in run  # not "No rows yet"
    assert re.search(r'<li data-phase="queued" class="phase-current"', run)
    assert re.search(r'<li data-phase="send" class="phase-todo"', run)
    live = pages.get(f"/runs/{run_id}/live").json()
    assert [phase["name"] for phase in live["phases"]] == ["queued", "snapshot", "plan", "send", "finish"]
    assert live["phaseLabel"] == "Queued"
    with transaction(world.runtime.sessions) as session:  # a worker has just started it: no phase yet
        started = session.get(Run, int(run_id))
        assert started is not None
        assert started.phase is None
        started.status, started.started_at = RunStatus.RUNNING, datetime.now(UTC)
    live = pages.get(f"/runs/{run_id}/live").json()
    assert live["phaseLabel"] == "Snapshot", live  # as the list of phases says, not "—"
    assert 'data-testid="run-phase">Snapshot<' in pages.get(f"/runs/{run_id}").text

    pages.get("/system/schedule")
    schedule = [("enabled", "1"), ("frequency", "daily"), ("times", "06:00"), ("timezone", "Europe/Warsaw")]
    assert pages.post("/system/schedule", schedule).status_code == 303
    shown = re.findall(
        r'<time datetime="[^"]+" data-tz="Europe/Warsaw">([^<]+)</time>', pages.get("/system/schedule").text
    )
    assert shown
    assert all("6:00" in text and text.endswith("Europe/Warsaw") for text in shown)
    assert "Europe/Warsaw" in pages.get(f"/exports/{export_id}").text  # its next run, in that zone

    with transaction(world.runtime.sessions) as session:
        now = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
        session.add(SystemRefresh(scheduled_for=now, started_at=now, finished_at=now, status="succeeded",
                                  details={"segments_failed": [], "runs_queued": [int(run_id)], "runs_skipped": []}))  # fmt: skip
    status = pages.get("/system/status").text
    assert f'Runs queued: <a href="/runs/{run_id}">#{run_id}</a>' in status
    assert "runs_queued" not in status
    audit = pages.get("/audit").text
    assert "Connection · Created" in audit
    assert "System schedule · Changed" in audit
    assert ">schedule.update<" not in audit
    assert ">system_schedule<" not in audit


def test_a_connection_without_export_user_is_not_ok_and_you_are_offered_only_what_you_are_not(
    world: World,  # noqa: F811
) -> None:
    data = ConnectionCreate(
        type=ConnectionType.CAMPAIGN_MONITOR, name="No user", consent=True, add_me_as_export_user=False,
        auth=ApiKeyAuth(api_key=world.cm["ApiKey"], client_id=world.cm["ClientID"]),
    )  # fmt: skip
    with transaction(world.runtime.sessions) as session:
        connection_id = connections.create(
            session=session, runtime=world.runtime, data=data, actor=world.admin()
        ).id
    pages = world.pages()
    page = pages.get(f"/connections/{connection_id}").text
    assert "This connection has no export user" in page
    assert re.search(r'data-testid="connection-status">Needs attention<', page)  # no green OK beside it
    assert 'data-testid="add-export-user"' in page
    pages.post(f"/connections/{connection_id}/export-user", {})
    page = pages.get(f"/connections/{connection_id}").text
    assert 'data-testid="you-are-export-user"' in page
    assert 'data-testid="add-export-user"' not in page
