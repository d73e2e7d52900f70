"""REST API for exports and runs (`/api/v1/exports…`, `/api/v1/runs…`): happy paths and errors,
with API tokens, over a real store and the sandbox."""

from __future__ import annotations

import csv
import io
from typing import Any

import duckdb
from fastapi.testclient import TestClient

from segmentsync.exports.models import RunStatus
from segmentsync.scheduling.worker import Worker

from .world import World

API = "/api/v1"


def body(world: World, **changes: Any) -> dict[str, Any]:
    return world.form(**changes).model_dump(mode="json")


def created(client: TestClient, world: World, person: Any = None, **changes: Any) -> dict[str, Any]:
    answer = client.post(f"{API}/exports", json=body(world, **changes), headers=(person or world.admin).auth)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_create_show_list_and_edit(client: TestClient, world: World) -> None:
    export = created(
        client, world, world.contributor, attributes=[{"column": "first_name", "target": "Name"}]
    )
    assert (export["permission"], export["members"], export["list_name"]) == ("edit", 10, "CM Shared list")
    assert export["connection"]["name"] == "CM Shared"
    assert (export["status"], export["schedule"], export["warnings"]) == (
        "never_run",
        "With system refresh",
        [],
    )
    created(client, world, name="Private", connection_id=world.cm_private.connection_id)

    listed = client.get(
        f"{API}/exports", params={"sort": "-name", "limit": 1}, headers=world.contributor.auth
    )
    assert listed.status_code == 200
    page = listed.json()
    assert (page["total"], [row["name"] for row in page["items"]]) == (2, ["Private"])
    assert page["items"][0]["permission"] == "view"
    searched = client.get(f"{API}/exports", params={"q": "cm admins"}, headers=world.viewer.auth).json()
    assert [row["name"] for row in searched["items"]] == ["Private"]  # by its connection

    shown = client.get(f"{API}/exports/{export['id']}", headers=world.viewer.auth).json()
    assert (shown["permission"], shown["attributes"]) == (
        "view",
        [{"column": "first_name", "target": "Name"}],
    )

    edited = client.patch(
        f"{API}/exports/{export['id']}",
        json={"schedule_mode": "cron", "cron": "0 6 * * 1-5", "timezone": "Europe/Warsaw"},
        headers=world.contributor.auth,
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["schedule"] == "Custom: 0 6 * * 1-5 (Europe/Warsaw)"
    assert edited.json()["next_run_at"] is not None


def test_errors_name_the_field(client: TestClient, world: World) -> None:
    created(client, world)
    cases = [
        (body(world), world.admin, 409, "name_taken", "name"),
        (body(world, name="x", list_id="123"), world.admin, 422, "bad_list_id", "list_id"),
        (body(world, name="x", list_id="0" * 32), world.admin, 400, None, "list_id"),
        (body(world, name="x", connection_id=world.cm_private.connection_id), world.contributor, 403, "connection_forbidden", "connection_id"),
        (body(world, name="x"), world.viewer, 403, "forbidden", None),
        ({**body(world, name="x"), "segment_ids": []}, world.admin, 422, "invalid", "segment_ids"),
    ]  # fmt: skip
    for sent, person, status, code, field in cases:
        answer = client.post(f"{API}/exports", json=sent, headers=person.auth)
        assert answer.status_code == status, (sent, answer.text)
        error = answer.json()["error"]
        if code:
            assert error["code"] == code
        assert error.get("field") == field, error
    export = client.get(f"{API}/exports", headers=world.admin.auth).json()["items"][0]
    for sent in ({"connection_id": None}, {"name": None}, {"segment_ids": None}):
        answer = client.patch(f"{API}/exports/{export['id']}", json=sent, headers=world.admin.auth)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"] == next(iter(sent))
    assert client.get(f"{API}/exports/9999", headers=world.viewer.auth).status_code == 404
    assert (
        client.get(f"{API}/exports", params={"sort": "password"}, headers=world.viewer.auth).status_code
        == 422
    )


def test_every_problem_of_an_export_is_reported_at_once(client: TestClient, world: World) -> None:
    """The service's checks and the stored export's form (PATCH) report all their problems in one
    422: each with its field (``loc``), code and an English sentence (``message``)."""
    sent = {**body(world, name="Several", list_id="123", email_column="no_such_column", consent_to_track="column",
                   schedule_mode="cron"), "segment_ids": [9999]}  # fmt: skip
    answer = client.post(f"{API}/exports", json=sent, headers=world.admin.auth)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    found = {tuple(item["loc"]): item for item in error["details"]["errors"]}
    assert set(found) == {("list_id",), ("email_column",), ("consent_column",), ("cron",), ("segment_ids",)}
    assert found[("list_id",)]["code"] == "bad_list_id"
    assert (
        found[("list_id",)]["message"]
        == "'123' is not a Campaign Monitor list ID: it is 32 hexadecimal characters"
    )
    assert found[("email_column",)]["code"] == "unknown_column"
    assert found[("segment_ids",)]["message"] == "there is no segment with id 9999"
    assert (error["field"],) in found  # the first one found
    assert all(item["message"] in error["message"] for item in found.values())
    one = client.post(f"{API}/exports", json=body(world, name="One", list_id="123"), headers=world.admin.auth)
    assert one.json()["error"]["code"] == "bad_list_id"  # a single problem keeps its own code and status

    export = created(client, world)
    changes = {"name": None, "email_column": None, "segment_ids": None}  # fit the change, not the export
    patched = client.patch(f"{API}/exports/{export['id']}", json=changes, headers=world.admin.auth)
    assert patched.status_code == 422, patched.text
    listed = patched.json()["error"]["details"]["errors"]
    assert {item["loc"][0] for item in listed} == {"name", "email_column", "segment_ids"}
    assert all(item["message"] for item in listed)


def test_duplicate_detach_attach_and_remove(client: TestClient, world: World) -> None:
    export = created(client, world)
    copy = client.post(f"{API}/exports/{export['id']}/duplicate", headers=world.admin.auth)
    assert copy.status_code == 201
    assert copy.json()["name"] == "Copy of Newsletter PL"
    detached = client.post(f"{API}/exports/{export['id']}/detach", headers=world.admin.auth).json()
    assert (detached["connection"], detached["status"], detached["type"]) == (
        None,
        "no_connection",
        "campaign_monitor",
    )
    refused = client.post(f"{API}/exports/{export['id']}/runs", headers=world.admin.auth)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "no_connection")
    wrong = client.post(
        f"{API}/exports/{export['id']}/attach",
        json={"connection_id": world.cc.connection_id},
        headers=world.admin.auth,
    )
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "wrong_platform")
    attached = client.post(
        f"{API}/exports/{export['id']}/attach",
        json={"connection_id": world.cm.connection_id},
        headers=world.admin.auth,
    )
    assert attached.status_code == 200
    assert attached.json()["connection"]["id"] == world.cm.connection_id
    run = client.post(f"{API}/exports/{export['id']}/runs", headers=world.admin.auth).json()
    removed = client.delete(f"{API}/exports/{export['id']}", headers=world.admin.auth)
    assert removed.status_code == 204
    kept = client.get(f"{API}/runs/{run['id']}", headers=world.viewer.auth).json()
    assert (kept["export_id"], kept["export_name"], kept["status"]) == (None, "Newsletter PL", "cancelled")


def test_run_cancel_and_one_active_run(client: TestClient, world: World) -> None:
    export = created(client, world)
    started = client.post(
        f"{API}/exports/{export['id']}/runs", json={"dry_run": True}, headers=world.contributor.auth
    )
    assert started.status_code == 201
    run = started.json()
    assert (run["status"], run["dry_run"], run["triggered_by"]) == ("queued", True, "carl@example.com")
    again = client.post(f"{API}/exports/{export['id']}/runs", headers=world.admin.auth)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "run_active")
    assert client.post(f"{API}/exports/{export['id']}/runs", headers=world.viewer.auth).status_code == 403
    listed = client.get(
        f"{API}/runs", params={"status": "queued", "export_id": export["id"]}, headers=world.viewer.auth
    )
    assert [r["id"] for r in listed.json()["items"]] == [run["id"]]
    assert (
        client.get(f"{API}/runs", params={"status": "sleeping"}, headers=world.viewer.auth).status_code == 422
    )
    assert client.post(f"{API}/runs/{run['id']}/cancel", headers=world.viewer.auth).status_code == 403
    cancelled = client.post(f"{API}/runs/{run['id']}/cancel", headers=world.contributor.auth).json()
    assert cancelled["status"] == "cancelled"
    ended = client.post(f"{API}/runs/{run['id']}/cancel", headers=world.contributor.auth)
    assert (ended.status_code, ended.json()["error"]["code"]) == (409, "run_ended")
    not_waiting = client.post(f"{API}/runs/{run['id']}/confirm", headers=world.contributor.auth)
    assert (not_waiting.status_code, not_waiting.json()["error"]["code"]) == (409, "not_awaiting")
    runs = client.get(f"{API}/exports/{export['id']}/runs", headers=world.viewer.auth).json()
    assert [r["status"] for r in runs["items"]] == ["cancelled"]
    all_runs = client.post(f"{API}/exports/run-all", headers=world.admin.auth).json()
    assert [r["status"] for r in all_runs["queued"]] == ["queued"]


def test_rows_are_searchable_by_email_and_downloadable_as_csv(client: TestClient, world: World) -> None:
    con = duckdb.connect(str(world.runtime.settings.data_dir / "profiles.duckdb"))
    con.execute("INSERT INTO profiles VALUES (100, '=HYPERLINK(\"x\")', 'F', 'L', 'C', 1, 'PL', 'no')")
    con.close()
    export = created(client, world)
    run = client.post(f"{API}/exports/{export['id']}/runs", headers=world.admin.auth).json()
    assert Worker(world.runtime).run_once() == run["id"]
    shown = client.get(f"{API}/runs/{run['id']}", headers=world.viewer.auth).json()
    assert shown["status"] == RunStatus.SUCCEEDED.value
    assert (shown["counts"]["new"], shown["counts"]["invalid"], shown["counts"]["profiles"]) == (10, 1, 11)
    assert shown["progress"]["percent"] == 100.0
    found = client.get(
        f"{API}/runs/{run['id']}/rows", params={"email": "PERSON4"}, headers=world.viewer.auth
    ).json()
    assert sorted(r["email"] for r in found["items"]) == ["person40@example.com", "person4@example.com"]
    invalid = client.get(
        f"{API}/runs/{run['id']}/rows", params={"outcome": "invalid"}, headers=world.viewer.auth
    )
    assert [r["code"] for r in invalid.json()["items"]] == ["bad_syntax"]
    bad = client.get(f"{API}/runs/{run['id']}/rows", params={"outcome": "lost"}, headers=world.viewer.auth)
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "outcome")
    download = client.get(f"{API}/runs/{run['id']}/rows.csv", headers=world.viewer.auth)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert f"run-{run['id']}-rows.csv" in download.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(download.text)))
    assert lines[0] == ["email", "profile_key", "action", "outcome", "code", "message"]
    assert len(lines) == 12
    assert lines[-1][:4] == ['\'=HYPERLINK("x")', "100", "invalid", "invalid"]  # a formula, defused
    only_new = client.get(
        f"{API}/runs/{run['id']}/rows.csv", params={"outcome": "new"}, headers=world.viewer.auth
    )
    assert len(only_new.text.strip().splitlines()) == 11
