"""Constant Contact emulator: /v3/contacts, sign_up_form, custom fields, list-membership activities."""

from __future__ import annotations

import datetime as dt
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


def _ids(cc: CC, list_id: str, emails: list[str]) -> dict[str, str]:
    members = cc.members(list_id)
    return {email: members[email]["contact_id"] for email in emails}


def test_get_contacts_pages_through_everyone(cc: CC, list_id: str) -> None:
    emails = [f"p{n:02d}@example.com" for n in range(7)]
    cc.import_rows([list_id], [{"email": email} for email in emails])
    seen: list[str] = []
    response = cc.api("GET", "/contacts", params={"limit": 3, "include_count": "true"})
    while True:
        body = response.json()
        assert body["contacts_count"] == 7
        seen += [c["email_address"]["address"] for c in body["contacts"]]
        if "_links" not in body:
            break
        assert body["_links"]["next"]["href"].startswith("/v3/contacts?cursor=")
        response = cc.api("GET", body["_links"]["next"]["href"])
    assert seen == emails


def test_filter_by_email_is_case_insensitive(cc: CC, list_id: str) -> None:
    cc.import_rows([list_id], [{"email": "ann@example.com"}, {"email": "bob@example.com"}])
    found = cc.api("GET", "/contacts", params={"email": "ANN@Example.com"}).json()["contacts"]
    assert [c["email_address"]["address"] for c in found] == ["ann@example.com"]
    assert cc.api("GET", "/contacts", params={"email": "nobody@example.com"}).json()["contacts"] == []


def test_filter_by_lists_and_status(cc: CC, list_id: str) -> None:
    other = cc.new_list("Other")
    cc.import_rows([list_id], [{"email": "a@example.com"}, {"email": "b@example.com"}])
    cc.import_rows([other], [{"email": "c@example.com"}])
    cc.control("contacts/unsubscribe", {"email": "b@example.com"})

    def emails(**params: Any) -> list[str]:
        response = cc.api("GET", "/contacts", params=params)
        assert response.status_code == 200, response.text
        return [c["email_address"]["address"] for c in response.json()["contacts"]]

    assert emails(lists=list_id) == ["a@example.com", "b@example.com"]
    assert emails(lists=f"{list_id},{other}") == ["a@example.com", "b@example.com", "c@example.com"]
    assert emails(status="unsubscribed") == ["b@example.com"]
    assert emails(status="active", lists=list_id) == ["a@example.com"]
    assert emails(lists="04fe9a97-a579-43c5-bb1a-58ed29bf0a6a") == []


def test_includes_are_only_there_when_asked(cc: CC, list_id: str) -> None:
    field = cc.new_field("Tier")
    cc.import_rows([list_id], [{"email": "a@example.com", "cf:Tier": "gold"}])
    plain = cc.api("GET", "/contacts").json()["contacts"][0]
    assert "custom_fields" not in plain
    assert "list_memberships" not in plain
    rich = cc.api("GET", "/contacts", params={"include": "custom_fields,list_memberships,taggings"}).json()[
        "contacts"
    ][0]
    assert rich["custom_fields"] == [{"custom_field_id": field["custom_field_id"], "value": "gold"}]
    assert rich["list_memberships"] == [list_id]
    assert rich["taggings"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"status": "gone"},
        {"include": "secrets"},
        {"include_count": "maybe"},
        {"tags": "x"},
    ],
)
def test_bad_contact_queries_are_400(cc: CC, params: dict[str, Any]) -> None:
    response = cc.api("GET", "/contacts", params=params)
    assert response.status_code == 400
    assert error_keys(response) == ["contacts.api.validation.error"]


def test_get_one_contact_and_404s(cc: CC, list_id: str) -> None:
    cc.import_rows([list_id], [{"email": "a@example.com"}])
    contact_id = _ids(cc, list_id, ["a@example.com"])["a@example.com"]
    response = cc.api("GET", f"/contacts/{contact_id}", params={"include": "list_memberships"})
    assert response.status_code == 200
    assert response.json()["list_memberships"] == [list_id]
    for missing in ("not-a-uuid", "04fe9a97-a579-43c5-bb1a-58ed29bf0a6a"):
        answer = cc.api("GET", f"/contacts/{missing}")
        assert answer.status_code == 404
        assert error_keys(answer) == ["contacts.api.not_found"]


def test_delete_contact_is_204_and_keeps_a_deleted_record(cc: CC, list_id: str) -> None:
    cc.import_rows([list_id], [{"email": "a@example.com"}, {"email": "b@example.com"}])
    contact_id = _ids(cc, list_id, ["a@example.com"])["a@example.com"]
    response = cc.api("DELETE", f"/contacts/{contact_id}")
    assert (response.status_code, response.content) == (204, b"")
    assert set(cc.members(list_id)) == {"b@example.com"}
    assert [c["email_address"]["address"] for c in cc.api("GET", "/contacts").json()["contacts"]] == [
        "b@example.com"
    ]
    deleted = cc.api("GET", "/contacts", params={"status": "deleted"}).json()["contacts"]
    assert [c["contact_id"] for c in deleted] == [contact_id]
    assert "deleted_at" in deleted[0]
    counts = cc.api("GET", "/contact_lists", params={"include_membership_count": "all"}).json()
    assert counts["lists"][0]["membership_count"] == 1
    assert cc.api("DELETE", "/contacts/04fe9a97-a579-43c5-bb1a-58ed29bf0a6a").status_code == 404
    # importing it again restores it (same contact)
    cc.import_rows([list_id], [{"email": "a@example.com"}])
    assert cc.members(list_id)["a@example.com"]["contact_id"] == contact_id


def test_sign_up_form_creates_then_updates_with_explicit_permission(cc: CC, list_id: str) -> None:
    body = {"email_address": "Sue@example.com", "first_name": "Sue", "list_memberships": [list_id]}
    created = cc.api("POST", "/contacts/sign_up_form", json=body)
    assert created.status_code == 201
    assert created.json()["action"] == "created"
    contact = cc.contact("sue@example.com")
    assert contact["email_address"]["permission_to_send"] == "explicit"
    assert contact["email_address"]["opt_in_source"] == "Contact"
    assert contact["create_source"] == "Contact"
    cc.control("contacts/unsubscribe", {"email": "sue@example.com"})
    updated = cc.api("POST", "/contacts/sign_up_form", json=body | {"last_name": "Lee"})
    assert updated.status_code == 200
    assert updated.json() == {"contact_id": created.json()["contact_id"], "action": "updated"}
    contact = cc.contact("sue@example.com")
    assert contact["email_address"]["permission_to_send"] == "explicit"  # re-subscribed by the contact
    assert (contact["first_name"], contact["last_name"]) == ("Sue", "Lee")


@pytest.mark.parametrize(
    "body",
    [
        {"email_address": "x@example.com"},
        {"email_address": "x@example.com", "list_memberships": []},
        {"email_address": "nope", "list_memberships": ["LIST"]},
        {"list_memberships": ["LIST"]},
        {"email_address": "x@example.com", "list_memberships": ["04fe9a97-a579-43c5-bb1a-58ed29bf0a6a"]},
        {
            "email_address": "x@example.com",
            "list_memberships": ["LIST"],
            "custom_fields": [{"custom_field_id": "no", "value": "v"}],
        },
        {"email_address": "x@example.com", "list_memberships": ["LIST"], "phone_number": "5" * 26},
    ],
    ids=["no lists", "empty lists", "bad email", "no email", "unknown list", "unknown field", "long phone"],
)
def test_invalid_sign_ups_are_400(cc: CC, list_id: str, body: dict[str, Any]) -> None:
    if "list_memberships" in body:
        body["list_memberships"] = [list_id if item == "LIST" else item for item in body["list_memberships"]]
    response = cc.api("POST", "/contacts/sign_up_form", json=body)
    assert response.status_code == 400
    assert error_keys(response) == ["contacts.api.validation.error"]


def test_custom_fields_create_list_and_conflict(cc: CC) -> None:
    created = cc.new_field("Vehicle make and model year")
    assert created["name"] == "Vehicle_make_and_model_year"
    assert created["type"] == "string"
    for n in range(3):
        cc.new_field(f"Field {n}", "number")
    page = cc.api("GET", "/contact_custom_fields", params={"limit": 3}).json()
    assert len(page["custom_fields"]) == 3
    rest = cc.api("GET", page["_links"]["next"]["href"]).json()
    assert len(rest["custom_fields"]) == 1
    assert "_links" not in rest
    one = cc.api("GET", f"/contact_custom_fields/{created['custom_field_id']}")
    assert one.json() == created
    duplicate = cc.api(
        "POST", "/contact_custom_fields", json={"label": "Vehicle make and model year", "type": "string"}
    )
    assert duplicate.status_code == 409
    assert error_keys(duplicate) == ["contacts.api.conflict"]


@pytest.mark.parametrize(
    "body",
    [
        {"type": "string"},
        {"label": "x" * 51, "type": "string"},
        {"label": "ok"},
        {"label": "ok", "type": "color"},
    ],
    ids=["no label", "long label", "no type", "unknown type"],
)
def test_invalid_custom_fields_are_400(cc: CC, body: dict[str, Any]) -> None:
    response = cc.api("POST", "/contact_custom_fields", json=body)
    assert response.status_code == 400
    assert error_keys(response) == ["contacts.api.validation.error"]


def test_remove_list_memberships_by_contact_ids(cc: CC, list_id: str) -> None:
    other = cc.new_list("Other")
    emails = ["a@example.com", "b@example.com", "c@example.com"]
    cc.import_rows([list_id, other], [{"email": email} for email in emails])
    ids = _ids(cc, list_id, emails)
    body = {"source": {"contact_ids": [ids["a@example.com"], ids["b@example.com"]]}, "list_ids": [list_id]}
    response = cc.api("POST", "/activities/remove_list_memberships", json=body)
    assert response.status_code == 201
    activity = response.json()
    assert activity["state"] == "initialized"
    assert activity["status"]["list_count"] == 1
    assert cc.activity(activity["activity_id"])["state"] == "completed"
    assert set(cc.members(list_id)) == {"c@example.com"}
    assert set(cc.members(other)) == set(emails)  # other lists untouched, contacts kept


def test_remove_list_memberships_by_source_lists_with_exclude(cc: CC, list_id: str) -> None:
    source = cc.new_list("Source")
    cc.import_rows([list_id, source], [{"email": "a@example.com"}, {"email": "b@example.com"}])
    keep = _ids(cc, list_id, ["b@example.com"])["b@example.com"]
    body = {"source": {"list_ids": [source]}, "exclude": {"contact_ids": [keep]}, "list_ids": [list_id]}
    assert cc.api("POST", "/activities/remove_list_memberships", json=body).status_code == 201
    assert set(cc.members(list_id)) == {"b@example.com"}


def test_add_list_memberships(cc: CC, list_id: str) -> None:
    target = cc.new_list("Target")
    cc.import_rows([list_id], [{"email": "a@example.com"}, {"email": "b@example.com"}])
    cc.control("contacts/unsubscribe", {"email": "b@example.com"})
    body = {"source": {"list_ids": [list_id]}, "list_ids": [target]}
    assert cc.api("POST", "/activities/add_list_memberships", json=body).status_code == 201
    assert set(cc.members(target)) == {"a@example.com"}  # unsubscribed contacts are not added


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"source": {"contact_ids": []}}, 400),
        ({"source": {"contact_ids": []}, "list_ids": []}, 400),
        ({"source": {"contact_ids": ["x"]}, "list_ids": ["LIST"]}, 400),
        (
            {"source": {"contact_ids": ["04fe9a97-a579-43c5-bb1a-58ed29bf0a6a"] * 501}, "list_ids": ["LIST"]},
            400,
        ),
        ({"source": {"contact_ids": [], "list_ids": ["LIST"]}, "list_ids": ["LIST"]}, 400),
        ({"source": {}, "list_ids": ["LIST"]}, 400),
        ({"source": {"contact_ids": []}, "exclude": {"contact_ids": []}, "list_ids": ["LIST"]}, 400),
        ({"source": {"contact_ids": []}, "list_ids": ["04fe9a97-a579-43c5-bb1a-58ed29bf0a6a"]}, 404),
    ],
    ids=[
        "no targets",
        "empty targets",
        "bad id",
        "501 ids",
        "two sources",
        "no source",
        "exclude with ids",
        "unknown target",
    ],
)
def test_invalid_membership_removals(cc: CC, list_id: str, body: dict[str, Any], status: int) -> None:
    if "list_ids" in body:
        body["list_ids"] = [list_id if item == "LIST" else item for item in body["list_ids"]]
    if "list_ids" in body["source"]:
        body["source"]["list_ids"] = [list_id]
    response = cc.api("POST", "/activities/remove_list_memberships", json=body)
    assert response.status_code == status
    assert len(error_keys(response)) == 1


def test_sandbox_unsubscribe_of_an_unknown_email_is_404(cc: CC) -> None:
    assert cc.control("contacts/unsubscribe", {"email": "nobody@example.com"}).status_code == 404
    assert cc.http.get("/_sandbox/lists/04fe9a97-a579-43c5-bb1a-58ed29bf0a6a/members").status_code == 404


def _emails(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(c["email_address"]["address"] for c in response.json()["contacts"])


def _shift(stamp: str, seconds: int) -> str:
    moved = dt.datetime.fromisoformat(stamp) + dt.timedelta(seconds=seconds)
    return moved.isoformat().replace("+00:00", "Z")


def test_get_contacts_filters_by_creation_update_and_opt_out_times(cc: CC, list_id: str) -> None:
    cc.import_rows([list_id], [{"email": "a@example.com"}, {"email": "b@example.com"}])
    created = cc.contact("a@example.com")["created_at"]
    both = ["a@example.com", "b@example.com"]
    for name, bound, expected in [
        ("created_after", created, both),  # inclusive bounds, whole seconds as shown
        ("created_before", created, both),
        ("created_after", _shift(created, 1), []),
        ("created_before", _shift(created, -1), []),
        ("updated_after", _shift(created, -1), both),
        ("updated_before", _shift(created, -1), []),
    ]:
        assert _emails(cc.api("GET", "/contacts", params={name: bound})) == expected, (name, bound)
    assert _emails(cc.api("GET", "/contacts", params={"optout_after": _shift(created, -1)})) == []
    cc.control("contacts/unsubscribe", {"email": "b@example.com"})
    opted_out = cc.contact("b@example.com")["email_address"]["opt_out_date"]
    window = {"optout_after": opted_out, "optout_before": _shift(opted_out, 60)}
    assert _emails(cc.api("GET", "/contacts", params=window)) == ["b@example.com"]
    counted = cc.api("GET", "/contacts", params={**window, "include_count": "true"}).json()
    assert counted["contacts_count"] == 1
    assert cc.api("GET", "/contacts", params={"created_after": "yesterday"}).status_code == 400


def test_get_contacts_filters_on_what_the_account_does_not_have(cc: CC, list_id: str) -> None:
    """Tags, SMS and segments are not emulated: the account has none, as a real one may not."""
    cc.import_rows([list_id], [{"email": "a@example.com"}])
    tag = "8d1ba6e4-f2f1-11f1-9d3b-fa163e000001"
    assert _emails(cc.api("GET", "/contacts", params={"tags": tag})) == []
    assert _emails(cc.api("GET", "/contacts", params={"sms_status": "all"})) == []
    assert cc.api("GET", "/contacts", params={"tags": "red"}).status_code == 400
    assert cc.api("GET", "/contacts", params={"sms_status": "maybe"}).status_code == 400
    segment = cc.api("GET", "/contacts", params={"segment_id": "12", "limit": "10"})
    assert segment.status_code == 404
    assert error_keys(segment) == ["contacts.api.not_found"]
    assert cc.api("GET", "/contacts", params={"segment_id": "12", "status": "all"}).status_code == 400
    assert cc.api("GET", "/contacts", params={"segment_id": "x"}).status_code == 400
