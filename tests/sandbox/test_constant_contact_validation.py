"""Constant Contact emulator: values the vendor's document excludes are refused (400), methods a path
does not have are 405 with ``Allow``, ids are checked for their format before they are looked up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cc_api import CC, error_keys

from segmentsync.sandbox.launcher import Sandbox


@pytest.fixture
def cc(sandbox: Sandbox) -> Iterator[CC]:
    helper = CC(sandbox)
    yield helper
    helper.close()


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/contact_lists", {"limit": ""}),
        ("/contact_lists", {"status": ""}),
        ("/contact_lists", {"channel_type": "fax"}),
        ("/contact_lists", {"include_sms_membership_count": "maybe"}),
        ("/contacts", {"limit": ""}),
        ("/contacts", {"include": ""}),
        ("/contacts", {"status": ""}),
        ("/contacts", {"lists": "0"}),
        ("/contact_custom_fields", {"limit": ""}),
        ("/activities", {"limit": ""}),
    ],
)
def test_values_the_document_excludes_are_refused(cc: CC, path: str, params: dict[str, str]) -> None:
    response = cc.api("GET", path, params=params)
    assert response.status_code == 400, response.text
    assert error_keys(response) == ["contacts.api.validation.error"]


def test_sms_lists_are_none(cc: CC) -> None:
    cc.new_list("Email list")
    assert cc.api("GET", "/contact_lists", params={"channel_type": "sms"}).json()["lists"] == []
    assert len(cc.api("GET", "/contact_lists", params={"channel_type": "email"}).json()["lists"]) == 1


def test_list_description_null_is_refused(cc: CC) -> None:
    response = cc.api("POST", "/contact_lists", json={"name": "A", "description": None})
    assert response.status_code == 400
    assert "description" in response.json()[0]["error_message"]
    list_id = cc.new_list("B")
    assert (
        cc.api("PUT", f"/contact_lists/{list_id}", json={"name": "B", "description": None}).status_code == 400
    )


@pytest.mark.parametrize("bad_id", ["null", "0", "{}", "not-a-uuid"])
def test_a_list_id_that_is_not_a_uuid_is_a_validation_error(cc: CC, bad_id: str) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = cc.api(method, f"/contact_lists/{bad_id}", json={"name": "x"})
        assert response.status_code == 400, (method, response.text)
        assert bad_id in response.json()[0]["error_message"]
    unknown = cc.api("GET", "/contact_lists/8d1ba6e4-f2f1-11f1-9d3b-fa163e000001")
    assert unknown.status_code == 404


def test_list_ids_in_an_activity_are_checked_for_their_format(cc: CC) -> None:
    response = cc.api(
        "POST",
        "/activities/add_list_memberships",
        json={"source": {"all_active_contacts": True}, "list_ids": [0]},
    )
    assert response.status_code == 400
    assert error_keys(response) == ["contacts.api.validation.error"]


def test_a_method_the_path_does_not_have_is_405_naming_the_allowed_ones(cc: CC) -> None:
    response = cc.api("PATCH", "/contact_lists")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert error_keys(response) == ["contacts.api.method_not_allowed"]
    # a fixed path is not taken for an id of the templated path beside it
    assert cc.api("GET", "/contacts/sign_up_form").headers["allow"] == "POST"
    assert cc.api("GET", "/activities/contacts_json_import").status_code == 405
    # authentication comes first, as for every /v3 call
    assert cc.api("PATCH", "/contact_lists", token="nope").status_code == 401
    # a path that does not exist stays 404
    assert cc.api("PATCH", "/no_such_thing").status_code == 404


def test_options_names_the_methods_without_a_token(cc: CC) -> None:
    response = cc.http.options("/v3/contact_lists/8d1ba6e4-f2f1-11f1-9d3b-fa163e000001")
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, PUT, DELETE, OPTIONS"


@pytest.mark.parametrize(
    "metadata",
    [
        {"decimal_places": 1.5},
        {"decimal_places": 5},
        {"integer": False, "decimal_places": 0},
        {"allow_negative": "yes"},
        {"currency_code": "dollars"},
        {"display_type": "wheel"},
        {"colour": "red"},
        "not an object",
    ],
)
def test_custom_field_metadata_is_checked(cc: CC, metadata: object) -> None:
    response = cc.api(
        "POST", "/contact_custom_fields", json={"label": "Price", "type": "currency", "metadata": metadata}
    )
    assert response.status_code == 400, response.text
    assert error_keys(response) == ["contacts.api.validation.error"]


def test_custom_field_metadata_and_choices_as_the_platform_answers_them(cc: CC) -> None:
    metadata = {"currency_code": "USD", "integer": False, "decimal_places": 2}
    price = cc.api(
        "POST", "/contact_custom_fields", json={"label": "Price", "type": "currency", "metadata": metadata}
    )
    assert price.status_code == 201
    assert price.json()["metadata"] == metadata
    created = cc.api(
        "POST",
        "/contact_custom_fields",
        json={
            "label": "Size",
            "type": "single_select",
            "metadata": {"display_type": "radio"},
            "choices": [{"choice_label": "S"}, {"choice_label": "M", "display_order": 5}],
        },
    ).json()
    choices = created["choices"]
    assert [(c["choice_id"], c["choice_label"], c["display_order"]) for c in choices] == [
        (1, "S", 1),
        (2, "M", 5),
    ]
    assert {c["custom_field_id"] for c in choices} == {created["custom_field_id"]}
    assert all(c["created_at"] == created["created_at"] for c in choices)
    assert cc.api("GET", f"/contact_custom_fields/{created['custom_field_id']}").json() == created


def test_custom_field_choices_only_for_select_types_and_within_the_display_limit(cc: CC) -> None:
    text = cc.api(
        "POST",
        "/contact_custom_fields",
        json={"label": "A", "type": "string", "choices": [{"choice_label": "x"}]},
    )
    assert text.status_code == 400
    many = [{"choice_label": str(n)} for n in range(21)]
    radio = {"label": "B", "type": "multi_select", "metadata": {"display_type": "radio"}, "choices": many}
    assert cc.api("POST", "/contact_custom_fields", json=radio).status_code == 400
    dropdown = {"label": "C", "type": "multi_select", "choices": many}
    assert cc.api("POST", "/contact_custom_fields", json=dropdown).status_code == 201


@pytest.mark.parametrize(("bad_id", "shown"), [(None, "null"), (0, "0"), ({}, "{}"), ("nope", "nope")])
def test_list_ids_in_bodies_are_checked_for_their_format_and_named_as_sent(
    cc: CC, bad_id: object, shown: str
) -> None:
    bodies = [
        (
            "/activities/contacts_json_import",
            {"import_data": [{"email": "a@example.com"}], "list_ids": [bad_id]},
        ),
        (
            "/activities/remove_list_memberships",
            {"source": {"all_active_contacts": True}, "list_ids": [bad_id]},
        ),
        ("/contacts/sign_up_form", {"email_address": "a@example.com", "list_memberships": [bad_id]}),
        (
            "/contacts",
            {
                "email_address": {"address": "a@example.com"},
                "create_source": "Account",
                "list_memberships": [bad_id],
            },
        ),
    ]
    for path, body in bodies:
        response = cc.api("POST", path, json=body)
        assert response.status_code == 400, (path, response.text)
        assert response.json()[0]["error_message"].endswith(f"invalid list ID: {shown}."), response.text


def test_an_unknown_list_in_a_contact_body_is_a_validation_error(cc: CC) -> None:
    """As in sign_up_form and the import (POST /contacts documents no 404)."""
    unknown = "8d1ba6e4-f2f1-11f1-9d3b-fa163e000001"
    body = {
        "email_address": {"address": "a@example.com"},
        "create_source": "Account",
        "list_memberships": [unknown],
    }
    response = cc.api("POST", "/contacts", json=body)
    assert response.status_code == 400
    assert response.json()[0]["error_message"] == f"The contact list {unknown} does not exist."


def test_sign_up_form_custom_fields_must_be_objects(cc: CC) -> None:
    """A bare custom field id (not {custom_field_id, value}) is a 400, not a server error."""
    list_id = cc.new_list("Sign-ups")
    field_id = cc.new_field("Colour")["custom_field_id"]
    body = {"email_address": "a@example.com", "list_memberships": [list_id], "custom_fields": [field_id]}
    response = cc.api("POST", "/contacts/sign_up_form", json=body)
    assert response.status_code == 400, response.text
    body["custom_fields"] = [{"custom_field_id": field_id, "value": "red"}]
    assert cc.api("POST", "/contacts/sign_up_form", json=body).status_code == 201
    assert cc.members(list_id)["a@example.com"]["custom_fields"] == {"Colour": "red"}
