"""REST API for System > Schedule and Status (`/api/v1/system/…`): the schedule, refreshes, recent
runs, and the admins' notifications."""

from __future__ import annotations

from fastapi.testclient import TestClient

from segmentsync.db import transaction
from segmentsync.exports import notify

from .world import World

API = "/api/v1/system"


def test_the_schedule_is_shown_to_all_and_set_by_admins(client: TestClient, world: World) -> None:
    shown = client.get(f"{API}/schedule", headers=world.viewer.auth)
    assert shown.status_code == 200
    assert (shown.json()["enabled"], shown.json()["description"]) == (False, "Off")
    wanted = {"enabled": True, "frequency": "weekly", "weekdays": ["mon", 4], "times": ["18:00", "06:30"]}
    refused = client.put(f"{API}/schedule", json=wanted, headers=world.contributor.auth)
    assert refused.status_code == 403
    saved = client.put(
        f"{API}/schedule", json={**wanted, "timezone": "Europe/Helsinki"}, headers=world.admin.auth
    )
    assert saved.status_code == 200, saved.text
    schedule = saved.json()
    assert (schedule["weekdays"], schedule["times"]) == ([0, 4], ["06:30", "18:00"])
    assert schedule["description"] == "Every Mon, Fri at 06:30, 18:00 (Europe/Helsinki)"
    assert len(schedule["next_refreshes"]) == 5
    bad = client.put(f"{API}/schedule", json={**wanted, "times": ["25:00"]}, headers=world.admin.auth)
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "times")
    too_many = {**wanted, "times": ["01:00", "02:00", "03:00", "04:00", "05:00"]}
    assert (
        "at most 4"
        in client.put(f"{API}/schedule", json=too_many, headers=world.admin.auth).json()["error"]["message"]
    )


def test_a_refresh_now_queues_the_exports_and_shows_in_the_status(client: TestClient, world: World) -> None:
    export = client.post(
        "/api/v1/exports", json=world.form().model_dump(mode="json"), headers=world.admin.auth
    ).json()
    assert client.post(f"{API}/refreshes", headers=world.contributor.auth).status_code == 403
    refresh = client.post(f"{API}/refreshes", headers=world.admin.auth)
    assert refresh.status_code == 201
    assert (refresh.json()["trigger"], refresh.json()["status"]) == ("on_demand", "succeeded")
    status = client.get(f"{API}/status", headers=world.viewer.auth).json()
    assert [r["id"] for r in status["refreshes"]] == [refresh.json()["id"]]
    assert [(r["export_id"], r["status"]) for r in status["active_runs"]] == [(export["id"], "queued")]
    assert status["runs_by_status"] == {"queued": 1}
    assert status["unread_notifications"] is None  # viewers get no notifications
    listed = client.get(f"{API}/refreshes", headers=world.viewer.auth).json()
    assert listed["total"] == 1


def test_admins_read_notifications_and_mark_them_read(client: TestClient, world: World) -> None:
    export = world.create(world.form())
    run = client.post(f"/api/v1/exports/{export.export_id}/runs", headers=world.admin.auth).json()
    with transaction(world.runtime.sessions) as session:
        for message in ("first", "second"):
            notify.notice(session, kind="alert_triggered", message=message, run_id=run["id"])
    assert client.get(f"{API}/notifications", headers=world.contributor.auth).status_code == 403
    unread = client.get(f"{API}/notifications", params={"unread": True}, headers=world.admin.auth).json()
    assert unread["total"] == 2
    assert "second" in unread["items"][0]["message"]
    assert client.get(f"{API}/status", headers=world.admin.auth).json()["unread_notifications"] == 2
    first = unread["items"][1]["id"]
    marked = client.post(f"{API}/notifications/{first}/read", headers=world.admin.auth).json()
    assert marked["read_at"] is not None
    assert client.post(f"{API}/notifications/9999/read", headers=world.admin.auth).status_code == 404
    assert client.post(f"{API}/notifications/read-all", headers=world.admin.auth).json() == {"marked": 1}
    assert (
        client.get(f"{API}/notifications", params={"unread": True}, headers=world.admin.auth).json()["total"]
        == 0
    )
