"""What got in a new user's way, fixed (TestClient, both metadata stores): errors as sentences
beside their fields, all at once; runs that say what they are doing; times in their own zone; no
raw JSON or internal codes on the pages."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from segmentsync.db import transaction
from segmentsync.scheduling.models import SystemRefresh

from .pages import field_error
from .test_pages import World, world  # noqa: F401  # the pages' world: users, profiles, the sandbox


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
