"""Constant Contact emulator: contacts_json_import and the activity that processes it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cc_api import CC, error_keys

from segmentsync.sandbox.launcher import Sandbox


@pytest.fixture
def cc(sandbox: Sandbox) -> Iterator[CC]:
    helper = CC(sandbox)
    yield helper
    helper.close()


@pytest.fixture
def list_id(cc: CC) -> str:
    return cc.new_list()


def test_import_answers_201_with_an_initialized_activity(cc: CC, list_id: str) -> None:
    response = cc.start_import([list_id], [{"email": "a@example.com"}, {"email": "b@example.com"}])
    assert response.status_code == 201
    body = response.json()
    assert body["state"] == "initialized"
    assert body["percent_done"] == 0
    assert body["activity_errors"] == []
    assert body["status"]["items_total_count"] == 2
    assert body["_links"] == {"self": {"href": f"/v3/activities/{body['activity_id']}"}}
    done = cc.activity(body["activity_id"])
    assert done["state"] == "completed"
    assert done["percent_done"] == 100
    assert done["status"] == {
        "items_total_count": 2,
        "items_completed_count": 2,
        "person_count": 2,
        "error_count": 0,
        "correctable_count": 0,
        "cannot_add_to_list_count": 0,
    }
    assert {"started_at", "completed_at", "created_at", "updated_at"} <= set(done)


def test_new_contacts_get_implicit_permission(cc: CC, list_id: str) -> None:
    cc.import_rows([list_id], [{"email": "New@Example.COM", "first_name": "Ann", "last_name": "Lee"}])
    contact = cc.contact("new@example.com")
    assert contact["email_address"]["address"] == "new@example.com"  # stored in lower case
    assert contact["email_address"]["permission_to_send"] == "implicit"
    assert contact["email_address"]["opt_in_source"] == "Account"
    assert contact["create_source"] == "Account"
    assert (contact["first_name"], contact["last_name"]) == ("Ann", "Lee")
    assert contact["list_memberships"] == [list_id]


def test_existing_contacts_are_partially_updated_and_keep_their_permission(cc: CC, list_id: str) -> None:
    other = cc.new_list("Other")
    signed_up = cc.api(
        "POST",
        "/contacts/sign_up_form",
        json={
            "email_address": "ann@example.com",
            "first_name": "Ann",
            "last_name": "Lee",
            "list_memberships": [other],
        },
    )
    assert signed_up.status_code == 201
    activity = cc.import_rows([list_id], [{"email": "ANN@example.com", "first_name": "Anne"}])
    assert activity["status"]["person_count"] == 1
    contact = cc.contact("ann@example.com")
    assert (contact["first_name"], contact["last_name"]) == ("Anne", "Lee")  # no blanking
    assert contact["email_address"]["permission_to_send"] == "explicit"  # untouched
    assert sorted(contact["list_memberships"]) == sorted([list_id, other])  # appended


def test_unsubscribed_contacts_are_not_added_to_lists(cc: CC, list_id: str) -> None:
    cc.import_rows([list_id], [{"email": "gone@example.com"}])
    cc.control("contacts/unsubscribe", {"email": "gone@example.com"})
    target = cc.new_list("Target")
    activity = cc.import_rows(
        [target], [{"email": "gone@example.com", "first_name": "G"}, {"email": "in@example.com"}]
    )
    assert activity["status"]["cannot_add_to_list_count"] == 1
    assert activity["status"]["person_count"] == 2
    assert set(cc.members(target)) == {"in@example.com"}
    contact = cc.contact("gone@example.com")
    assert contact["email_address"]["permission_to_send"] == "unsubscribed"
    assert contact["email_address"]["opt_out_source"] == "Contact"


@pytest.mark.parametrize(
    ("row", "counter"),
    [
        ({"email": "not-an-email"}, "correctable_count"),
        ({"email": "a b@example.com"}, "correctable_count"),
        ({"email": "x@example"}, "correctable_count"),
        ({"email": ("x" * 75) + "@example.com"}, "correctable_count"),
        ({"first_name": "No email"}, "correctable_count"),
        ({"email": "d@example.com", "anniversary": "2020-13-45"}, "correctable_count"),
        ({"email": "d@example.com", "birthday_month": 11}, "correctable_count"),
        ({"email": "d@example.com", "first_name": "x" * 51}, "error_count"),
        ({"email": "d@example.com", "first_name": 7}, "error_count"),
        ({"sms_number": "5555555555"}, "error_count"),
    ],
    ids=[
        "syntax",
        "space",
        "no tld",
        "over 80",
        "no email",
        "bad anniversary",
        "half birthday",
        "long name",
        "number",
        "sms only",
    ],
)
def test_bad_rows_are_counted_not_imported(cc: CC, list_id: str, row: dict[str, Any], counter: str) -> None:
    activity = cc.import_rows([list_id], [row, {"email": "good@example.com"}])
    status = activity["status"]
    assert status[counter] == 1
    assert status["person_count"] == 1
    assert len(activity["activity_errors"]) == 1
    assert isinstance(activity["activity_errors"][0], str)
    assert set(cc.members(list_id)) == {"good@example.com"}


def test_extra_properties_are_stored(cc: CC, list_id: str) -> None:
    row = {
        "email": "p@example.com",
        "job_title": "Chef",
        "company_name": "Acme",
        "birthday_month": 11,
        "birthday_day": 24,
        "anniversary": "11/15/2006",
        "phone": "555-555-5555",
        "street": "1 Main St",
        "city": "Springfield",
        "zip": "60609",
        "country": "US",
    }
    cc.import_rows([list_id], [row])
    contact = cc.contact("p@example.com", include="phone_numbers,street_addresses")
    assert (contact["job_title"], contact["company_name"], contact["anniversary"]) == (
        "Chef",
        "Acme",
        "2006-11-15",
    )
    assert (contact["birthday_month"], contact["birthday_day"]) == (11, 24)
    assert contact["phone_numbers"] == [{"kind": "other", "phone_number": "555-555-5555"}]
    assert contact["street_addresses"] == [
        {
            "kind": "home",
            "street": "1 Main St",
            "postal_code": "60609",
            "city": "Springfield",
            "country": "US",
        }
    ]


def test_custom_fields_by_name(cc: CC, list_id: str) -> None:
    field = cc.new_field("Favorite color")
    assert field["name"] == "Favorite_color"
    activity = cc.import_rows([list_id], [{"email": "c@example.com", "cf:Favorite_color": "blue"}])
    assert activity["status"]["person_count"] == 1
    contact = cc.contact("c@example.com")
    assert contact["custom_fields"] == [{"custom_field_id": field["custom_field_id"], "value": "blue"}]
    assert cc.members(list_id)["c@example.com"]["custom_fields"] == {"Favorite_color": "blue"}
    too_long = cc.import_rows([list_id], [{"email": "c@example.com", "cf:Favorite_color": "x" * 256}])
    assert too_long["status"]["error_count"] == 1


def test_unknown_custom_field_skips_its_values_not_the_import(cc: CC, list_id: str) -> None:
    """A per-row matter like every other (the request is accepted): the contact is imported with
    its other properties, the unknown field's values are not, and activity_errors says so."""
    cc.new_field("Favorite color")
    rows = [{"email": "c@example.com", "first_name": "Cy", "cf:nope": "x", "cf:Favorite_color": "red"}]
    response = cc.start_import([list_id], rows)
    assert response.status_code == 201
    activity = cc.activity(response.json()["activity_id"])
    assert activity["status"]["person_count"] == 1
    assert activity["status"]["error_count"] == 0
    assert activity["activity_errors"] == [
        "Custom field cf:nope does not exist: its values were not imported."
    ]
    member = cc.members(list_id)["c@example.com"]
    assert member["first_name"] == "Cy"
    assert member["custom_fields"] == {"Favorite_color": "red"}


def test_same_email_twice_in_one_import_updates_one_contact(cc: CC, list_id: str) -> None:
    activity = cc.import_rows(
        [list_id],
        [{"email": "d@example.com", "first_name": "One"}, {"email": "D@example.com", "first_name": "Two"}],
    )
    assert activity["status"]["person_count"] == 2
    assert cc.members(list_id)["d@example.com"]["first_name"] == "Two"


@pytest.mark.parametrize(
    "body",
    [
        {"list_ids": ["LIST"]},
        {"import_data": [], "list_ids": ["LIST"]},
        {"import_data": {"email": "a@example.com"}, "list_ids": ["LIST"]},
        {"import_data": ["a@example.com"], "list_ids": ["LIST"]},
        {"import_data": [{"email": "a@example.com"}]},
        {"import_data": [{"email": "a@example.com"}], "list_ids": []},
        {"import_data": [{"email": "a@example.com"}], "list_ids": ["LIST"] * 51},
        {"import_data": [{"email": "a@example.com"}], "list_ids": ["04fe9a97-a579-43c5-bb1a-58ed29bf0a6a"]},
        {"import_data": [{"email": "a@example.com"}], "list_ids": "LIST"},
        {"import_data": [{"email": "a@example.com"}], "list_ids": ["LIST"], "sms_permission_to_send": "yes"},
    ],
    ids=[
        "no rows",
        "empty rows",
        "rows not array",
        "row not object",
        "no lists",
        "empty lists",
        "51 lists",
        "unknown list",
        "lists not array",
        "sms permission",
    ],
)
def test_invalid_imports_are_400_arrays(cc: CC, list_id: str, body: dict[str, Any]) -> None:
    if isinstance(body.get("list_ids"), list):
        body["list_ids"] = [list_id if item == "LIST" else item for item in body["list_ids"]]
    elif body.get("list_ids") == "LIST":
        body["list_ids"] = list_id
    response = cc.api("POST", "/activities/contacts_json_import", json=body)
    assert response.status_code == 400
    assert error_keys(response) == ["contacts.api.validation.error"]


def test_at_most_40000_rows(cc: CC, list_id: str) -> None:
    rows = [{"email": f"u{n}@example.com"} for n in range(40_001)]
    too_many = cc.start_import([list_id], rows)
    assert too_many.status_code == 400
    accepted = cc.start_import([list_id], rows[:40_000])
    assert accepted.status_code == 201
    assert cc.activity(accepted.json()["activity_id"])["status"]["person_count"] == 40_000


def test_only_the_first_4_mb_are_imported(cc: CC, list_id: str) -> None:
    rows = [
        {"email": f"user{n:05d}@example.com", "street": "s" * 255, "street2": "t" * 200} for n in range(9_000)
    ]
    activity = cc.import_rows([list_id], rows)
    imported = activity["status"]["items_total_count"]
    assert 7_000 < imported < 9_000  # ~500 bytes a row: about 8,000 rows fit in 4,000,000 bytes
    assert activity["status"]["person_count"] == imported
    assert set(cc.members(list_id)) == {row["email"] for row in rows[:imported]}


def test_a_contact_is_on_at_most_50_lists(cc: CC) -> None:
    lists = [cc.new_list(f"L{n}") for n in range(51)]
    cc.import_rows(lists[:50], [{"email": "busy@example.com"}])
    activity = cc.import_rows([lists[50]], [{"email": "busy@example.com"}])
    assert activity["status"]["error_count"] == 1
    assert "50 lists" in activity["activity_errors"][0]


def test_activity_progresses_and_effects_appear_when_it_completes(cc: CC, list_id: str) -> None:
    cc.limits(instant_activities=False, activity_rows_per_second=0.5)  # 200 s for 100 rows
    first = cc.start_import(
        [list_id], [{"email": f"a{n}@example.com", "first_name": "First"} for n in range(100)]
    )
    second = cc.start_import([list_id], [{"email": "a0@example.com", "first_name": "Second"}])
    processing = cc.activity(first.json()["activity_id"])
    assert processing["state"] == "processing"
    assert processing["percent_done"] < 100
    assert "started_at" in processing
    assert "completed_at" not in processing
    queued = cc.activity(second.json()["activity_id"])
    assert queued["state"] == "initialized"  # processed in creation order, after the first
    assert cc.api("GET", "/contacts", params={"email": "a0@example.com"}).json()["contacts"] == []
    assert cc.members(list_id) == {}
    states = {a["activity_id"]: a["state"] for a in cc.api("GET", "/activities").json()["activities"]}
    assert states == {first.json()["activity_id"]: "processing", second.json()["activity_id"]: "initialized"}
    cc.limits(instant_activities=True)  # the rest of the work happens at once, in order
    assert cc.activity(first.json()["activity_id"])["state"] == "completed"
    assert cc.activity(second.json()["activity_id"])["percent_done"] == 100
    assert cc.members(list_id)["a0@example.com"]["first_name"] == "Second"
    assert len(cc.members(list_id)) == 100


def test_too_many_queued_activities_is_429(cc: CC, list_id: str) -> None:
    cc.limits(instant_activities=False, activity_rows_per_second=0.01, max_queued_activities=2)
    for _ in range(2):
        assert cc.start_import([list_id], [{"email": "q@example.com"}]).status_code == 201
    response = cc.start_import([list_id], [{"email": "q@example.com"}])
    assert response.status_code == 429
    body = response.json()
    assert isinstance(body, dict)
    assert body["error_key"] == "throttled"
    assert "1,000 queued activities" in body["error_message"]
    assert cc.limits()["limits"]["max_queued_activities"] == 2


def test_activities_list_recent_first_with_state_filter_and_paging(cc: CC, list_id: str) -> None:
    ids = [
        cc.start_import([list_id], [{"email": f"r{n}@example.com"}]).json()["activity_id"] for n in range(3)
    ]
    body = cc.api("GET", "/activities", params={"limit": 2}).json()
    assert [a["activity_id"] for a in body["activities"]] == ids[::-1][:2]
    rest = cc.api("GET", body["_links"]["next"]["href"]).json()
    assert [a["activity_id"] for a in rest["activities"]] == ids[:1]
    assert "_links" not in rest
    completed = cc.api("GET", "/activities", params={"state": "completed"}).json()["activities"]
    assert len(completed) == 3
    assert cc.api("GET", "/activities", params={"state": "processing"}).json()["activities"] == []
    assert cc.api("GET", "/activities", params={"state": "bogus"}).status_code == 400


def test_unknown_activity_is_404(cc: CC) -> None:
    response = cc.api("GET", "/activities/04fe9a97-a579-43c5-bb1a-58ed29bf0a6a")
    assert response.status_code == 404
    assert error_keys(response) == ["contacts.api.not_found"]


def test_a_contact_has_at_most_25_custom_fields(cc: CC, list_id: str) -> None:
    names = [cc.new_field(f"F{n}")["name"] for n in range(26)]
    activity = cc.import_rows(
        [list_id], [{"email": "many@example.com"} | {f"cf:{name}": "v" for name in names}]
    )
    assert activity["status"]["error_count"] == 1
    assert "25 custom fields" in activity["activity_errors"][0]
    ok = cc.import_rows(
        [list_id], [{"email": "many@example.com"} | {f"cf:{name}": "v" for name in names[:25]}]
    )
    assert ok["status"]["person_count"] == 1


def test_no_activity_speed_means_at_once(cc: CC, list_id: str) -> None:
    cc.limits(instant_activities=False, activity_rows_per_second=None)
    assert cc.import_rows([list_id], [{"email": "now@example.com"}])["state"] == "completed"
