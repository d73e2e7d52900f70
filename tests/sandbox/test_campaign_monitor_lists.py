"""Campaign Monitor emulator: clients, lists, list stats and custom-field definitions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from cm_api import CM, row

from segmentsync.sandbox.launcher import Sandbox

HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def cm(sandbox: Sandbox) -> Iterator[CM]:
    helper = CM(sandbox)
    yield helper
    helper.close()


def test_systemdate_and_countries(cm: CM) -> None:
    date = cm.api("GET", "/systemdate.json").json()["SystemDate"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", date)
    countries = cm.api("GET", "/countries.json").json()
    assert "Australia" in countries


def test_pretty_output(cm: CM) -> None:
    assert "\n" in cm.api("GET", "/clients.json", params={"pretty": "true"}).text


def test_create_list_then_read_it_back(cm: CM) -> None:
    settings = {
        "UnsubscribePage": "https://example.com/bye",
        "ConfirmedOptIn": False,
        "UnsubscribeSetting": "OnlyThisList",
    }
    response = cm.api(
        "POST", f"/lists/{cm.client_id}.json", json={"Title": "a non-basic list :)", **settings}
    )
    assert response.status_code == 201
    list_id = response.json()
    assert HEX32.fullmatch(list_id)
    assert cm.api("GET", f"/clients/{cm.client_id}/lists.json").json() == [
        {"ListID": list_id, "Name": "a non-basic list :)"}
    ]
    assert cm.api("GET", f"/lists/{list_id}.json").json() == {
        "ConfirmedOptIn": False,
        "Title": "a non-basic list :)",
        "UnsubscribePage": "https://example.com/bye",
        "ListID": list_id,
        "ConfirmationSuccessPage": "",
        "UnsubscribeSetting": "OnlyThisList",
    }


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"Title": ""}, 251),
        ({"Title": "Newsletter"}, 250),
        ({"Title": "NEWSLETTER"}, 250),
        ({"Title": "Other", "UnsubscribeSetting": "Sometimes"}, 261),
    ],
)
def test_create_list_errors(cm: CM, body: dict[str, Any], code: int) -> None:
    cm.new_list("Newsletter")
    response = cm.api("POST", f"/lists/{cm.client_id}.json", json=body)
    assert (response.status_code, response.json()["Code"]) == (400, code)


def test_property_names_are_case_insensitive(cm: CM) -> None:
    response = cm.api("POST", f"/lists/{cm.client_id}.json", json={"title": "lower", "CONFIRMEDOPTIN": True})
    assert response.status_code == 201
    assert cm.api("GET", f"/lists/{response.json()}.json").json()["ConfirmedOptIn"] is True


def test_a_body_that_is_not_json_is_cms_deserialization_error(cm: CM) -> None:
    response = cm.api("POST", f"/lists/{cm.client_id}.json", content=b"{nope")
    assert response.status_code == 400
    assert response.json()["Code"] == 400
    assert response.json()["Message"].startswith("Failed to deserialize your request.")


def test_update_and_delete_list(cm: CM) -> None:
    list_id = cm.new_list()
    body = {"Title": "Renamed", "UnsubscribeSetting": "OnlyThisList", "AddUnsubscribesToSuppList": True}
    response = cm.api("PUT", f"/lists/{list_id}.json", json=body)
    assert (response.status_code, response.content) == (200, b"")
    assert cm.api("GET", f"/lists/{list_id}.json").json()["Title"] == "Renamed"
    assert cm.api("DELETE", f"/lists/{list_id}.json").status_code == 200
    assert cm.api("GET", f"/lists/{list_id}.json").json()["Code"] == 101


def test_stats_count_states_and_todays_changes(cm: CM) -> None:
    list_id = cm.new_list()
    cm.import_rows(list_id, [row(f"s{i}@example.com") for i in range(5)])
    cm.api("POST", f"/subscribers/{list_id}/unsubscribe.json", json={"EmailAddress": "s0@example.com"})
    cm.api("DELETE", f"/subscribers/{list_id}.json", params={"email": "s1@example.com"})
    cm.set_state(list_id, "s2@example.com", "Bounced")
    stats = cm.api("GET", f"/lists/{list_id}/stats.json").json()
    assert len(stats) == 24
    assert stats["TotalActiveSubscribers"] == 2
    assert stats["NewActiveSubscribersToday"] == 5
    assert stats["NewActiveSubscribersYesterday"] == 0
    assert stats["NewActiveSubscribersThisYear"] == 5
    assert (stats["TotalUnsubscribes"], stats["UnsubscribesToday"], stats["UnsubscribesThisWeek"]) == (
        1,
        1,
        1,
    )
    assert (stats["TotalDeleted"], stats["DeletedThisMonth"]) == (1, 1)
    assert (stats["TotalBounces"], stats["BouncesToday"]) == (1, 1)


def test_custom_field_lifecycle(cm: CM) -> None:
    list_id = cm.new_list()
    assert cm.new_field(list_id, "subscription date", "Date") == "[subscriptiondate]"
    assert cm.new_field(list_id, "colours", "MultiSelectMany", ["red", "green"]) == "[colours]"
    fields = cm.api("GET", f"/lists/{list_id}/customfields.json").json()
    assert fields == [
        {
            "FieldName": "subscription date",
            "Key": "[subscriptiondate]",
            "DataType": "Date",
            "FieldOptions": [],
            "VisibleInPreferenceCenter": True,
        },
        {
            "FieldName": "colours",
            "Key": "[colours]",
            "DataType": "MultiSelectMany",
            "FieldOptions": ["red", "green"],
            "VisibleInPreferenceCenter": True,
        },
    ]
    key = quote("[subscriptiondate]", "")
    body = {"FieldName": "my renamed custom field", "VisibleInPreferenceCenter": False}
    renamed = cm.api("PUT", f"/lists/{list_id}/customfields/{key}.json", json=body)
    assert (renamed.status_code, renamed.json()) == (200, "[myrenamedcustomfield]")
    options = {"Options": ["blue"], "KeepExistingOptions": True}
    assert (
        cm.api("PUT", f"/lists/{list_id}/customfields/%5Bcolours%5D/options.json", json=options).status_code
        == 200
    )
    fields = cm.api("GET", f"/lists/{list_id}/customfields.json").json()
    assert fields[0]["VisibleInPreferenceCenter"] is False
    assert fields[1]["FieldOptions"] == ["red", "green", "blue"]
    options = {"Options": ["black"], "KeepExistingOptions": False}
    cm.api("PUT", f"/lists/{list_id}/customfields/%5Bcolours%5D/options.json", json=options)
    assert cm.api("GET", f"/lists/{list_id}/customfields.json").json()[1]["FieldOptions"] == ["black"]
    deleted = cm.api("DELETE", f"/lists/{list_id}/customfields/%5Bmyrenamedcustomfield%5D.json")
    assert (deleted.status_code, deleted.content) == (200, b"")
    assert [f["Key"] for f in cm.api("GET", f"/lists/{list_id}/customfields.json").json()] == ["[colours]"]


def test_country_fields_get_cms_generated_options(cm: CM) -> None:
    list_id = cm.new_list()
    cm.new_field(list_id, "Country", "Country")
    cm.new_field(list_id, "State", "USState")
    country, state = cm.api("GET", f"/lists/{list_id}/customfields.json").json()
    assert "Australia" in country["FieldOptions"]
    assert "Texas" in state["FieldOptions"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"FieldName": "", "DataType": "Text"}, 254),
        ({"FieldName": "website", "DataType": "Text"}, 255),
        ({"FieldName": "WebSite", "DataType": "Number"}, 255),
        ({"FieldName": "age", "DataType": "Text", "Options": ["a"]}, 256),
        ({"FieldName": "pick", "DataType": "MultiSelectOne", "Options": []}, 257),
        ({"FieldName": "pick", "DataType": "MultiSelectMany"}, 257),
        ({"FieldName": "when", "DataType": "Timestamp"}, 259),
    ],
)
def test_create_custom_field_errors(cm: CM, body: dict[str, Any], code: int) -> None:
    list_id = cm.new_list()
    cm.new_field(list_id, "website")
    response = cm.api("POST", f"/lists/{list_id}/customfields.json", json=body)
    assert (response.status_code, response.json()["Code"]) == (400, code)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/customfields/website.json", {"FieldName": "x"}),
        ("PUT", "/customfields/%5Bmissing%5D.json", {"FieldName": "x"}),
        ("DELETE", "/customfields/website.json", None),
        ("DELETE", "/customfields/%5Bmissing%5D.json", None),
        ("PUT", "/customfields/%5Bmissing%5D/options.json", {"Options": ["a"]}),
    ],
)
def test_custom_field_key_errors_are_253(cm: CM, method: str, path: str, body: dict[str, Any] | None) -> None:
    list_id = cm.new_list()
    cm.new_field(list_id, "website")
    response = cm.api(method, f"/lists/{list_id}{path}", json=body)
    assert (response.status_code, response.json()) == (
        400,
        {"Code": 253, "Message": "Invalid Key. Keys must be surrounded with [ ]"},
    )


def test_renaming_onto_an_existing_field_is_255(cm: CM) -> None:
    list_id = cm.new_list()
    cm.new_field(list_id, "website")
    cm.new_field(list_id, "homepage")
    response = cm.api(
        "PUT", f"/lists/{list_id}/customfields/%5Bhomepage%5D.json", json={"FieldName": "Website"}
    )
    assert response.json()["Code"] == 255


def test_options_only_for_multi_select_fields(cm: CM) -> None:
    list_id = cm.new_list()
    cm.new_field(list_id, "website")
    response = cm.api(
        "PUT", f"/lists/{list_id}/customfields/%5Bwebsite%5D/options.json", json={"Options": ["a"]}
    )
    assert response.json()["Code"] == 256


def test_unknown_route_and_wrong_method(cm: CM) -> None:
    missing = cm.api("GET", "/nothing-here.json")
    assert missing.status_code == 404
    assert missing.json()["Code"] == 404
    wrong = cm.api("PATCH", "/clients.json")
    assert wrong.status_code == 405
    assert wrong.json() == {
        "Code": 405,
        "Message": "The requested resource does not support http method 'PATCH'.",
    }
