"""Constant Contact emulator: rate limits, daily quota, injected faults, control endpoints, stats."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from cc_api import CC, error_keys

from segmentsync.sandbox.launcher import Sandbox

THROTTLED = {"error_key": "throttled", "error_message": "Too Many Requests"}
QUOTA = {"error_key": "quota_exceeded", "error_message": "Limit Exceeded"}


@pytest.fixture
def cc(sandbox: Sandbox) -> Iterator[CC]:
    helper = CC(sandbox)
    yield helper
    helper.close()


def test_default_limits_are_the_platforms(sandbox: Sandbox) -> None:
    cc = CC(sandbox, fast=False)
    limits = cc.limits()["limits"]
    assert limits["requests_per_second"] == 4
    assert limits["daily_quota"] == 10_000
    assert limits["token_requests_per_second"] == 1
    assert limits["access_token_seconds"] == 86_400
    assert limits["instant_activities"] is False
    assert limits["activity_rows_per_second"] > 0
    cc.close()


def test_requests_per_second_answers_throttled(cc: CC) -> None:
    cc.limits(requests_per_second=0.01)  # a burst of one, then one per 100 s: no race with the clock
    assert cc.api("GET", "/contact_lists").status_code == 200
    response = cc.api("GET", "/contact_lists")
    assert response.status_code == 429
    assert response.json() == THROTTLED  # a bare object, not an array
    assert "retry-after" not in response.headers
    assert cc.stats()["limited"]["throttled"] == 1


def test_the_rate_is_per_application_shared_by_its_tokens(cc: CC, sandbox: Sandbox) -> None:
    cc.limits(requests_per_second=0.01, token_requests_per_second=None)
    refreshed = cc.http.post(
        "/oauth2/default/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": cc.refresh_token},
        headers={
            "Authorization": "Basic "
            + base64.b64encode(f"{cc.client_id}:{cc.client_secret}".encode()).decode()
        },
    ).json()
    other_app = sandbox.create_cc_account("Other")
    assert cc.api("GET", "/contact_lists").status_code == 200
    assert cc.api("GET", "/contact_lists", token=refreshed["access_token"]).status_code == 429
    assert cc.api("GET", "/contact_lists", token=other_app["access_token"]).status_code == 200


def test_daily_quota_answers_quota_exceeded(cc: CC) -> None:
    cc.limits(daily_quota=3)
    statuses = [cc.api("GET", "/contact_lists").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert cc.api("GET", "/contact_lists").json() == QUOTA
    cc.limits(daily_quota=None)
    assert cc.api("GET", "/contact_lists").status_code == 200


def test_unauthenticated_requests_do_not_use_the_quota(cc: CC) -> None:
    cc.limits(daily_quota=1)
    assert cc.http.get("/v3/contact_lists").status_code == 401
    assert cc.api("GET", "/contact_lists").status_code == 200


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"requests_per_secnd": 5}, "requests_per_secnd"),
        ({"daily_quota": -1}, "daily_quota"),
        ({"requests_per_second": "fast"}, "requests_per_second"),
        ({"error_rate": 2}, "error_rate"),
    ],
)
def test_bad_fault_settings_are_400_naming_them(cc: CC, body: dict[str, Any], word: str) -> None:
    response = cc.control("faults", body)
    assert response.status_code == 400
    assert word in response.json()["error"]


def test_injected_faults_use_the_platforms_bodies(cc: CC) -> None:
    cc.limits(throttle_rate=1.0)
    throttled = cc.api("GET", "/contact_lists")
    assert (throttled.status_code, throttled.json()) == (429, THROTTLED)
    assert cc.http.get("/_sandbox/stats").status_code == 200  # control endpoints are never affected
    cc.limits(throttle_rate=0, error_rate=1.0)
    failed = cc.api("GET", "/contact_lists")
    assert failed.status_code == 500
    assert error_keys(failed) == ["server_error"]
    injected = cc.stats()["injected"]
    assert injected == {"throttled": 1, "server_error": 1}


def test_faults_can_target_paths(cc: CC) -> None:
    cc.limits(error_rate=1.0, path_pattern="contacts_json_import")
    list_id = cc.new_list()
    assert cc.start_import([list_id], [{"email": "a@example.com"}]).status_code == 500


def test_stats_count_requests_per_route_template(cc: CC) -> None:
    list_id = cc.new_list()
    for _ in range(3):
        cc.start_import([list_id], [{"email": "a@example.com"}])
    cc.api("GET", f"/contact_lists/{list_id}")
    cc.http.get("/v3/contact_lists")  # 401
    stats = cc.stats()
    assert stats["requests"] == {
        "POST /v3/contact_lists": 1,
        "POST /v3/activities/contacts_json_import": 3,
        "GET /v3/contact_lists/{list_id}": 1,
        "GET /v3/contact_lists": 1,
    }
    assert stats["total"] == 6
    assert stats["statuses"] == {"200": 1, "201": 4, "401": 1}


def test_reset_forgets_everything(cc: CC, sandbox: Sandbox) -> None:
    cc.new_list()
    cc.limits(daily_quota=5, error_rate=0.5)
    assert cc.control("reset").status_code == 200
    assert cc.stats()["total"] == 0
    state = cc.limits()
    assert state["limits"]["daily_quota"] == 10_000
    assert state["faults"]["error_rate"] == 0
    assert cc.api("GET", "/contact_lists").status_code == 401  # tokens are gone with the accounts
    assert cc.http.get("/_sandbox/accounts").json() == {"accounts": []}


def test_members_read_back_has_what_tests_compare(cc: CC) -> None:
    list_id = cc.new_list()
    cc.new_field("Tier")
    cc.import_rows(
        [list_id], [{"email": "A@example.com", "first_name": "Ann", "last_name": "Lee", "cf:Tier": "gold"}]
    )
    response = cc.http.get(f"/_sandbox/lists/{list_id}/members")
    body = response.json()
    assert body["list_id"] == list_id
    assert body["name"] == "Newsletter"
    member = body["members"][0]
    assert member["email"] == "a@example.com"
    assert (member["first_name"], member["last_name"]) == ("Ann", "Lee")
    assert member["custom_fields"] == {"Tier": "gold"}
    assert member["permission_to_send"] == "implicit"
    assert len(member["contact_id"]) == 36
