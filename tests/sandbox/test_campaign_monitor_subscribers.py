"""Campaign Monitor emulator: single-subscriber endpoints, unsubscribe/delete, paged listings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cm_api import CM, row

from segmentsync.sandbox.launcher import Sandbox


@pytest.fixture
def cm(sandbox: Sandbox) -> Iterator[CM]:
    helper = CM(sandbox)
    yield helper
    helper.close()


@pytest.fixture
def list_id(cm: CM) -> str:
    list_id = cm.new_list()
    cm.new_field(list_id, "website")
    return list_id


def test_add_then_get(cm: CM, list_id: str) -> None:
    website = {"Key": "website", "Value": "https://example.com"}
    response = cm.add(list_id, "Subscriber@Example.com", Name="Subscriber One", CustomFields=[website])
    assert (response.status_code, response.json()) == (201, "Subscriber@Example.com")
    detail = cm.get(list_id, "subscriber@example.com").json()
    assert detail.pop("Date") == detail.pop("ListJoinedDate")
    assert detail == {
        "EmailAddress": "Subscriber@Example.com",
        "Name": "Subscriber One",
        "State": "Active",
        "CustomFields": [{"Key": "website", "Value": "https://example.com"}],
        "ReadsEmailWith": "",
        "ConsentToTrack": "Yes",
    }
    assert "ConsentToTrack" not in cm.get(list_id, "subscriber@example.com", tracking=False).json()


def test_add_is_an_upsert_that_keeps_unmentioned_fields(cm: CM, list_id: str) -> None:
    cm.add(
        list_id, "a@example.com", Name="A", CustomFields=[{"Key": "[website]", "Value": "https://a.example"}]
    )
    again = cm.add(list_id, "A@EXAMPLE.COM", Name="A2", MobileNumber="+61491570006", ConsentToSendSms="Yes")
    assert again.json() == "a@example.com"
    detail = cm.get(list_id, "a@example.com").json()
    assert detail["Name"] == "A2"
    assert detail["CustomFields"] == [{"Key": "website", "Value": "https://a.example"}]
    assert (detail["MobileNumber"], detail["ConsentToSendSms"]) == ("+61491570006", "Yes")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"EmailAddress": "nope", "ConsentToTrack": "Yes"}, 1),
        ({"EmailAddress": "a@example.com"}, 214),
        ({"EmailAddress": "a@example.com", "ConsentToTrack": "Sure"}, 215),
        ({"EmailAddress": "a@example.com", "ConsentToTrack": "Yes", "MobileNumber": "0400"}, 220),
    ],
)
def test_add_errors(cm: CM, list_id: str, body: dict[str, Any], code: int) -> None:
    response = cm.api("POST", f"/subscribers/{list_id}.json", json=body)
    assert (response.status_code, response.json()["Code"]) == (400, code)


def test_add_without_resubscribe_refuses_an_unsubscribed_address(cm: CM, list_id: str) -> None:
    cm.add(list_id, "u@example.com")
    cm.api("POST", f"/subscribers/{list_id}/unsubscribe.json", json={"EmailAddress": "u@example.com"})
    refused = cm.add(list_id, "u@example.com", Resubscribe=False)
    assert (refused.status_code, refused.json()) == (
        400,
        {"Code": 206, "Message": "Email Address exists in unsubscribed list. Subscriber is not added."},
    )
    assert cm.add(list_id, "u@example.com", Resubscribe="True").status_code == 201
    assert cm.get(list_id, "u@example.com").json()["State"] == "Active"


@pytest.mark.parametrize(
    ("params", "code"), [({"email": "missing@example.com"}, 203), ({"email": "bad"}, 1), ({}, 1)]
)
def test_get_errors(cm: CM, list_id: str, params: dict[str, str], code: int) -> None:
    response = cm.api("GET", f"/subscribers/{list_id}.json", params=params)
    assert (response.status_code, response.json()["Code"]) == (400, code)


def _update(cm: CM, list_id: str, old: str, new: str, **fields: Any) -> Any:
    body = {"EmailAddress": new, "ConsentToTrack": "Unchanged", **fields}
    return cm.api("PUT", f"/subscribers/{list_id}.json", params={"email": old}, json=body)


def test_update_changes_the_address_and_keeps_fields(cm: CM, list_id: str) -> None:
    cm.add(list_id, "old@example.com", CustomFields=[{"Key": "website", "Value": "https://o.example"}])
    response = _update(cm, list_id, "OLD@example.com", "new@example.com", Name="New")
    assert (response.status_code, response.content) == (200, b"")
    assert cm.get(list_id, "old@example.com").json()["Code"] == 203
    detail = cm.get(list_id, "new@example.com").json()
    assert (detail["Name"], detail["ConsentToTrack"]) == ("New", "Yes")
    assert detail["CustomFields"] == [{"Key": "website", "Value": "https://o.example"}]


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ("missing@example.com", "x@example.com", 203),
        ("bad", "x@example.com", 1),
        ("a@example.com", "not-an-address", 211),
        ("a@example.com", "B@example.com", 201),
    ],
)
def test_update_errors(cm: CM, list_id: str, old: str, new: str, code: int) -> None:
    cm.add(list_id, "a@example.com")
    cm.add(list_id, "b@example.com")
    response = _update(cm, list_id, old, new)
    assert (response.status_code, response.json()["Code"]) == (400, code)


def test_update_with_resubscribe_reactivates(cm: CM, list_id: str) -> None:
    cm.add(list_id, "d@example.com")
    cm.api("DELETE", f"/subscribers/{list_id}.json", params={"email": "d@example.com"})
    _update(cm, list_id, "d@example.com", "d@example.com", Resubscribe=False)
    assert cm.get(list_id, "d@example.com").json()["State"] == "Deleted"
    _update(cm, list_id, "d@example.com", "d@example.com", Resubscribe=True)
    assert cm.get(list_id, "d@example.com").json()["State"] == "Active"


def test_delete_moves_to_deleted_without_suppressing(cm: CM, list_id: str) -> None:
    cm.add(list_id, "d@example.com")
    response = cm.api("DELETE", f"/subscribers/{list_id}.json", params={"email": "D@example.com"})
    assert (response.status_code, response.content) == (200, b"")
    assert cm.get(list_id, "d@example.com").json()["State"] == "Deleted"
    assert cm.api("GET", f"/clients/{cm.client_id}/suppressionlist.json").json()["Results"] == []
    missing = cm.api("DELETE", f"/subscribers/{list_id}.json", params={"email": "x@example.com"})
    assert missing.json()["Code"] == 203


def test_unsubscribe_all_client_lists_suppresses(cm: CM) -> None:
    first, second, other = (
        cm.new_list("First"),
        cm.new_list("Second"),
        cm.new_list("Mine", UnsubscribeSetting="OnlyThisList"),
    )
    for list_id in (first, second, other):
        cm.add(list_id, "u@example.com")
    response = cm.api(
        "POST", f"/subscribers/{first}/unsubscribe.json", json={"EmailAddress": "U@example.com"}
    )
    assert (response.status_code, response.content) == (200, b"")
    assert [cm.get(i, "u@example.com").json()["State"] for i in (first, second, other)] == [
        "Unsubscribed"
    ] * 3
    suppression = cm.api("GET", f"/clients/{cm.client_id}/suppressionlist.json").json()
    assert [(r["EmailAddress"], r["SuppressionReason"], r["State"]) for r in suppression["Results"]] == [
        ("u@example.com", "Unsubscribed", "Suppressed")
    ]
    assert suppression["TotalNumberOfRecords"] == 1


def test_unsubscribe_only_this_list(cm: CM) -> None:
    mine, other = cm.new_list("Mine", UnsubscribeSetting="OnlyThisList"), cm.new_list("Other")
    cm.add(mine, "u@example.com")
    cm.add(other, "u@example.com")
    cm.api("POST", f"/subscribers/{mine}/unsubscribe.json", json={"EmailAddress": "u@example.com"})
    assert cm.get(other, "u@example.com").json()["State"] == "Active"
    assert cm.api("GET", f"/clients/{cm.client_id}/suppressionlist.json").json()["Results"] == []


@pytest.mark.parametrize(("email", "code"), [("nobody@example.com", 203), ("bad", 1)])
def test_unsubscribe_errors(cm: CM, list_id: str, email: str, code: int) -> None:
    response = cm.api("POST", f"/subscribers/{list_id}/unsubscribe.json", json={"EmailAddress": email})
    assert (response.status_code, response.json()["Code"]) == (400, code)


@pytest.fixture
def filled(cm: CM, list_id: str) -> str:
    names = ["Carol", "alice", "Bob", "dave", "Eve"] * 5
    rows = [row(f"p{i:02d}@example.com", Name=names[i]) for i in range(25)]
    assert cm.import_rows(list_id, rows).status_code == 201
    cm.api("DELETE", f"/subscribers/{list_id}.json", params={"email": "p24@example.com"})
    return list_id


def _page(cm: CM, list_id: str, state: str = "active", **params: Any) -> Any:
    return cm.api("GET", f"/lists/{list_id}/{state}.json", params=params)


def test_paged_listing_shape_and_order(cm: CM, filled: str) -> None:
    page = _page(cm, filled, pagesize=10, page=3, orderfield="email", orderdirection="desc").json()
    assert [r["EmailAddress"] for r in page["Results"]] == [
        "p03@example.com",
        "p02@example.com",
        "p01@example.com",
        "p00@example.com",
    ]
    assert {key: page[key] for key in page if key != "Results"} == {
        "ResultsOrderedBy": "email",
        "OrderDirection": "desc",
        "PageNumber": 3,
        "PageSize": 10,
        "RecordsOnThisPage": 4,
        "TotalNumberOfRecords": 24,
        "NumberOfPages": 3,
    }
    assert "ConsentToTrack" not in page["Results"][0]
    by_name = _page(cm, filled, pagesize=10, orderfield="name", includetrackingpreference="True").json()
    assert [r["Name"] for r in by_name["Results"][:3]] == ["alice"] * 3
    assert by_name["Results"][0]["ConsentToTrack"] == "Yes"
    assert _page(cm, filled, page=9, pagesize=10).json()["Results"] == []


def test_defaults_like_the_official_client(cm: CM, filled: str) -> None:
    page = _page(
        cm,
        filled,
        date="",
        page=1,
        pagesize=1000,
        orderfield="email",
        orderdirection="asc",
        includetrackingpreference="False",
    ).json()
    assert (page["PageSize"], page["TotalNumberOfRecords"], page["NumberOfPages"]) == (1000, 24, 1)
    assert page["Results"][0]["EmailAddress"] == "p00@example.com"


def test_state_listings(cm: CM, filled: str) -> None:
    deleted = _page(cm, filled, "deleted").json()
    assert [(r["EmailAddress"], r["State"]) for r in deleted["Results"]] == [("p24@example.com", "Deleted")]
    for state in ("unsubscribed", "bounced", "unconfirmed"):
        assert _page(cm, filled, state).json()["TotalNumberOfRecords"] == 0


def test_date_filter(cm: CM, filled: str) -> None:
    assert _page(cm, filled, date="2000-01-01").json()["TotalNumberOfRecords"] == 24
    assert _page(cm, filled, date="2999-01-01 10:30").json()["TotalNumberOfRecords"] == 0


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"page": 0}, 800),
        ({"page": "x"}, 800),
        ({"pagesize": 9}, 801),
        ({"pagesize": 1001}, 801),
        ({"orderfield": "age"}, 802),
        ({"orderdirection": "up"}, 803),
        ({"date": "yesterday"}, 5),
        ({"date": "2024-02-30"}, 5),
    ],
)
def test_listing_parameter_errors(cm: CM, list_id: str, params: dict[str, Any], code: int) -> None:
    response = _page(cm, list_id, **params)
    assert (response.status_code, response.json()["Code"]) == (400, code)
