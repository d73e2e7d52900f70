"""Campaign Monitor emulator: /_sandbox control endpoints, platform limits and injected faults."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from cm_api import CM, row

from segmentsync.sandbox.launcher import Sandbox


@pytest.fixture
def cm(sandbox: Sandbox) -> Iterator[CM]:
    helper = CM(sandbox)
    yield helper
    helper.close()


def test_reset_forgets_clients_lists_and_limits(cm: CM, sandbox: Sandbox) -> None:
    cm.new_list()
    cm.control("faults", {"rate_limit": 5, "error_rate": 0.5})
    assert cm.control("reset").status_code == 200
    assert cm.http.get("/_sandbox/stats").json()["total_requests"] == 0
    state = cm.http.get("/_sandbox/faults").json()
    assert state["limits"]["rate_limit"] is None
    assert state["faults"]["error_rate"] == 0
    assert cm.api("GET", "/clients.json").json()["Code"] == 50  # the key is gone too


def test_clients_get_distinct_ids_and_keys(sandbox: Sandbox) -> None:
    first, second = sandbox.create_cm_client("One"), sandbox.create_cm_client("Two")
    assert len(first["ClientID"]) == 32
    assert first["ClientID"] != second["ClientID"]
    assert first["ApiKey"] != second["ApiKey"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [({"rate_limt": 3}, "rate_limt"), ({"rate_limit": 0}, "rate_limit"), ({"error_rate": 2}, "error_rate")],
)
def test_bad_fault_settings_are_400(cm: CM, body: dict[str, object], fragment: str) -> None:
    response = cm.control("faults", body)
    assert response.status_code == 400
    assert fragment in response.json()["error"]


def test_rate_limit_headers_and_429(cm: CM) -> None:
    cm.control("faults", {"rate_limit": 2, "rate_limit_window_seconds": 30})
    first, second, third = (cm.api("GET", "/systemdate.json") for _ in range(3))
    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == ("2", "1")
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert third.status_code == 429
    assert third.json() == {"Code": 429, "Message": "Rate limit exceeded"}
    assert third.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < int(third.headers["X-RateLimit-Reset"]) <= 30


def test_rate_limit_is_per_api_key(cm: CM, sandbox: Sandbox) -> None:
    cm.control("faults", {"rate_limit": 1})
    assert cm.api("GET", "/systemdate.json").status_code == 200
    other = CM(sandbox, "Other")
    assert other.api("GET", "/systemdate.json").status_code == 200
    other.close()


def test_no_rate_limit_headers_by_default(cm: CM) -> None:
    assert "X-RateLimit-Limit" not in cm.api("GET", "/systemdate.json").headers


def test_subscriber_throttle(cm: CM) -> None:
    list_id = cm.new_list()
    cm.control("faults", {"subscriber_throttle": 2})
    assert [cm.add(list_id, "busy@example.com").status_code for _ in range(2)] == [201, 201]
    throttled = cm.add(list_id, "BUSY@example.com")
    assert (throttled.status_code, throttled.json()) == (
        429,
        {"Code": 429, "Message": "Subscriber was added too many times too quickly, try again later."},
    )
    assert "X-RateLimit-Limit" not in throttled.headers
    assert cm.add(list_id, "calm@example.com").status_code == 201


@pytest.mark.parametrize(
    ("fault", "status", "body"),
    [
        ("error_rate", 500, {"Code": 500, "Message": "Sorry, we've run into a problem"}),
        ("throttle_rate", 429, {"Code": 429, "Message": "Rate limit exceeded"}),
    ],
)
def test_injected_faults_look_like_cm(cm: CM, fault: str, status: int, body: dict[str, object]) -> None:
    cm.control("faults", {fault: 1})
    response = cm.api("GET", "/clients.json")
    assert (response.status_code, response.json()) == (status, body)
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert cm.http.get("/_sandbox/stats").status_code == 200  # control is never affected
    injected = cm.http.get("/_sandbox/stats").json()["injected_faults"]
    assert injected == {"server_error" if status == 500 else "throttled": 1}


def test_stats_count_requests_per_route_template(cm: CM) -> None:
    list_id = cm.new_list()
    for start in (0, 2):
        cm.import_rows(list_id, [row(f"s{start + i}@example.com") for i in range(2)])
    cm.api("GET", "/nothing.json")
    stats = cm.http.get("/_sandbox/stats").json()
    assert stats["requests"] == {
        "GET (no such route)": 1,
        "POST /api/v3.3/lists/{clientid}.json": 1,
        "POST /api/v3.3/subscribers/{listid}/import.json": 2,
    }
    assert stats["total_requests"] == 4


def test_read_back_and_state_changes(cm: CM) -> None:
    list_id = cm.new_list()
    cm.new_field(list_id, "city")
    rows = [
        row("a@example.com", Name="A", CustomFields=[{"Key": "city", "Value": "Oslo"}]),
        row("b@example.com", "No"),
    ]
    cm.import_rows(list_id, rows)
    assert cm.subscribers(list_id) == {
        "a@example.com": {
            "EmailAddress": "a@example.com",
            "Name": "A",
            "State": "Active",
            "CustomFields": [{"Key": "city", "Value": "Oslo"}],
            "ConsentToTrack": "Yes",
        },
        "b@example.com": {
            "EmailAddress": "b@example.com",
            "Name": "",
            "State": "Active",
            "CustomFields": [],
            "ConsentToTrack": "No",
        },
    }
    assert cm.set_state(list_id, "B@example.com", "Bounced").json() == {
        "EmailAddress": "B@example.com",
        "State": "Bounced",
    }
    bounced = cm.http.get(f"/_sandbox/lists/{list_id}/subscribers", params={"state": "Bounced"}).json()
    assert [r["EmailAddress"] for r in bounced] == ["b@example.com"]
    suppressed = cm.api("GET", f"/clients/{cm.client_id}/suppressionlist.json").json()["Results"]
    assert [(r["EmailAddress"], r["SuppressionReason"]) for r in suppressed] == [("b@example.com", "Bounced")]
    assert cm.set_state(list_id, "b@example.com", "Active").status_code == 200
    assert cm.api("GET", f"/clients/{cm.client_id}/suppressionlist.json").json()["Results"] == []


@pytest.mark.parametrize(
    ("email", "state", "status"),
    [("nobody@example.com", "Deleted", 404), ("a@example.com", "Gone", 400), ("bad", "Deleted", 400)],
)
def test_state_change_errors(cm: CM, email: str, state: str, status: int) -> None:
    list_id = cm.new_list()
    cm.import_rows(list_id, [row("a@example.com")])
    assert cm.set_state(list_id, email, state).status_code == status


def test_read_back_of_an_unknown_list_is_404(cm: CM) -> None:
    assert cm.http.get("/_sandbox/lists/0123/subscribers").status_code == 404


def test_expire_every_token(cm: CM) -> None:
    tokens = [cm.oauth_token()["access_token"] for _ in range(2)]
    assert cm.control("tokens/expire").json() == {"expired": 2}
    for token in tokens:
        assert cm.http.get("/api/v3.3/clients.json", headers=cm.bearer(token)).json()["Code"] == 121


def test_an_outage_can_begin_after_a_number_of_matching_requests(cm: CM) -> None:
    list_id = cm.new_list()
    cm.control("faults", {"outage_after_requests": 2, "outage_seconds": 30, "path_pattern": "import"})
    assert cm.api("GET", "/clients.json").status_code == 200  # not matched: neither counted nor dropped
    for n in range(2):
        assert cm.import_rows(list_id, [row(f"before{n}@example.com")]).status_code == 201
    with pytest.raises(httpx.TransportError):  # the third import finds the platform gone
        cm.import_rows(list_id, [row("during@example.com")])
    assert cm.api("GET", "/clients.json").status_code == 200
    assert cm.http.get("/_sandbox/stats").json()["injected_faults"] == {"outage": 1}
    cm.control("faults", {"outage_seconds": 0})  # over
    assert cm.import_rows(list_id, [row("after@example.com")]).status_code == 201
