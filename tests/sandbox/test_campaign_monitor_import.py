"""Campaign Monitor emulator: bulk import semantics and typed custom-field values."""

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
    return cm.new_list()


def test_import_success_shape(cm: CM, list_id: str) -> None:
    response = cm.import_rows(list_id, [row(f"a{i}@example.com", Name=f"A {i}") for i in range(3)])
    assert response.status_code == 201
    assert response.json() == {
        "FailureDetails": [],
        "TotalUniqueEmailsSubmitted": 3,
        "TotalExistingSubscribers": 0,
        "TotalNewSubscribers": 3,
        "DuplicateEmailsInSubmission": [],
    }
    again = cm.import_rows(list_id, [row("A0@EXAMPLE.com", Name="Renamed"), row("a3@example.com")]).json()
    assert (again["TotalExistingSubscribers"], again["TotalNewSubscribers"]) == (1, 1)
    stored = cm.subscribers(list_id)
    assert stored["a0@example.com"]["EmailAddress"] == "a0@example.com"  # echoed as first stored
    assert stored["a0@example.com"]["Name"] == "Renamed"
    assert len(stored) == 4


def test_partial_failure_is_400_code_210_and_the_rest_is_stored(cm: CM, list_id: str) -> None:
    rows = [
        row("ok1@example.com"),
        row("example+1@example"),
        row("ok2@example.com"),
        {"EmailAddress": "c@example.com"},
    ]
    response = cm.import_rows(list_id, rows)
    assert response.status_code == 400
    body = response.json()
    assert (body["Code"], body["Message"]) == (210, "Subscriber Import had some failures")
    assert body["ResultData"] == {
        "FailureDetails": [
            {"EmailAddress": "example+1@example", "Code": 1, "Message": "Invalid Email Address"},
            {
                "EmailAddress": "c@example.com",
                "Code": 214,
                "Message": "Please provide a consent to track value",
            },
        ],
        "TotalUniqueEmailsSubmitted": 4,
        "TotalExistingSubscribers": 0,
        "TotalNewSubscribers": 2,
        "DuplicateEmailsInSubmission": [],
    }
    assert set(cm.subscribers(list_id)) == {"ok1@example.com", "ok2@example.com"}


@pytest.mark.parametrize(
    ("rows", "code", "message"),
    [
        (
            [row(f"x{i}@example.com") for i in range(1001)],
            209,
            "Too many subscribers in this batch. You can only add 1000 subscribers in one call",
        ),
        ([], 212, "No subscribers were provided in this batch"),
    ],
    ids=["1001 rows", "empty"],
)
def test_batch_size_errors_store_nothing(
    cm: CM, list_id: str, rows: list[dict[str, Any]], code: int, message: str
) -> None:
    response = cm.import_rows(list_id, rows)
    assert (response.status_code, response.json()) == (400, {"Code": code, "Message": message})
    assert cm.subscribers(list_id) == {}


def test_exactly_1000_rows_are_accepted(cm: CM, list_id: str) -> None:
    response = cm.import_rows(list_id, [row(f"x{i}@example.com") for i in range(1000)])
    assert response.json()["TotalNewSubscribers"] == 1000


def test_duplicates_in_one_call(cm: CM, list_id: str) -> None:
    rows = [
        row("dup@example.com", Name="first"),
        row("other@example.com"),
        row("DUP@example.com", Name="last"),
    ]
    result = cm.import_rows(list_id, rows).json()
    assert result["DuplicateEmailsInSubmission"] == ["dup@example.com"]
    assert (result["TotalUniqueEmailsSubmitted"], result["TotalNewSubscribers"]) == (2, 2)
    assert cm.subscribers(list_id)["dup@example.com"]["Name"] == "last"


@pytest.mark.parametrize(
    ("consent", "code"),
    [(None, 214), ("", 214), ("true", 215), ("Maybe", 215)],
)
def test_consent_to_track_is_required_per_subscriber(
    cm: CM, list_id: str, consent: str | None, code: int
) -> None:
    response = cm.import_rows(list_id, [{"EmailAddress": "c@example.com", "ConsentToTrack": consent}])
    assert response.json()["ResultData"]["FailureDetails"][0]["Code"] == code


@pytest.mark.parametrize("consent", ["Yes", "no", "UNCHANGED"])
def test_consent_values_are_case_insensitive(cm: CM, list_id: str, consent: str) -> None:
    assert cm.import_rows(list_id, [row("c@example.com", consent)]).status_code == 201


@pytest.mark.parametrize(
    "email",
    ["plain", "no-tld@example", "two@@example.com", "sp ace@example.com", ".dot@example.com", "", "a@-x.com"],
)
def test_invalid_addresses_are_code_1(cm: CM, list_id: str, email: str) -> None:
    failure = cm.import_rows(list_id, [row(email)]).json()["ResultData"]["FailureDetails"][0]
    assert (failure["Code"], failure["Message"]) == (1, "Invalid Email Address")


@pytest.mark.parametrize("email", ["example+1@example.com", "o'neil@sub.example.co.uk", "UPPER@EXAMPLE.COM"])
def test_valid_addresses(cm: CM, list_id: str, email: str) -> None:
    assert cm.import_rows(list_id, [row(email)]).status_code == 201


@pytest.mark.parametrize(
    ("mobile", "email", "code"), [("12345", "m@example.com", 220), ("12345", "bad", 221)]
)
def test_mobile_numbers_must_be_e164(cm: CM, list_id: str, mobile: str, email: str, code: int) -> None:
    response = cm.import_rows(list_id, [row(email, MobileNumber=mobile)])
    assert response.json()["ResultData"]["FailureDetails"][0]["Code"] == code


def test_property_names_and_flags_are_case_insensitive(cm: CM, list_id: str) -> None:
    body = {
        "subscribers": [{"emailaddress": "lower@example.com", "NAME": "Lower", "consenttotrack": "yes"}],
        "RESUBSCRIBE": "true",
        "QueueSubscriptionBasedAutoresponders": False,  # the Ruby client's spelling
        "RestartSubscriptionBasedAutoresponders": False,
    }
    response = cm.api("POST", f"/subscribers/{list_id}/import.json", json=body)
    assert response.status_code == 201
    assert cm.subscribers(list_id)["lower@example.com"]["Name"] == "Lower"


@pytest.mark.parametrize(
    ("state", "code"),
    [("Unsubscribed", 206), ("Deleted", 205), ("Bounced", 207), ("Unconfirmed", 208)],
)
def test_inactive_subscribers_come_back_only_with_resubscribe(cm: CM, state: str, code: int) -> None:
    list_id = cm.new_list("Only this list", UnsubscribeSetting="OnlyThisList")
    cm.import_rows(list_id, [row("p@example.com")])
    assert cm.set_state(list_id, "p@example.com", state).status_code == 200
    refused = cm.import_rows(list_id, [row("p@example.com", Name="changed")], resubscribe=False)
    assert refused.status_code == 400
    failure = refused.json()["ResultData"]["FailureDetails"][0]
    assert (failure["EmailAddress"], failure["Code"]) == ("p@example.com", code)
    stored = cm.subscribers(list_id)["p@example.com"]
    assert (stored["State"], stored["Name"]) == (state, "")
    taken_back = cm.import_rows(list_id, [row("p@example.com", Name="changed")], resubscribe=True)
    assert taken_back.json()["TotalExistingSubscribers"] == 1
    assert cm.subscribers(list_id)["p@example.com"]["State"] == "Active"


def test_suppressed_addresses_need_resubscribe_on_every_list_of_the_client(cm: CM) -> None:
    first, second = cm.new_list("First"), cm.new_list("Second")
    cm.import_rows(first, [row("s@example.com")])
    cm.api("POST", f"/subscribers/{first}/unsubscribe.json", json={"EmailAddress": "s@example.com"})
    refused = cm.import_rows(second, [row("s@example.com")], resubscribe=False).json()
    assert refused["ResultData"]["FailureDetails"][0]["Code"] == 204
    assert cm.import_rows(second, [row("s@example.com")], resubscribe=True).status_code == 201
    suppression = cm.api("GET", f"/clients/{cm.client_id}/suppressionlist.json").json()
    assert suppression["TotalNumberOfRecords"] == 0


def test_confirmed_opt_in_lists_start_unconfirmed(cm: CM) -> None:
    list_id = cm.new_list("Double opt-in", ConfirmedOptIn=True)
    cm.import_rows(list_id, [row("u@example.com")])
    assert cm.subscribers(list_id)["u@example.com"]["State"] == "Unconfirmed"


def test_consent_belongs_to_the_address_within_the_client(cm: CM) -> None:
    first, second = cm.new_list("First"), cm.new_list("Second")
    cm.import_rows(first, [row("t@example.com", "Yes")])
    cm.import_rows(second, [row("t@example.com", "No")])
    assert cm.subscribers(first)["t@example.com"]["ConsentToTrack"] == "No"
    cm.import_rows(first, [row("t@example.com", "Unchanged")])
    assert cm.subscribers(first)["t@example.com"]["ConsentToTrack"] == "No"


@pytest.fixture
def typed_list(cm: CM) -> str:
    list_id = cm.new_list("Typed")
    cm.new_field(list_id, "website")
    cm.new_field(list_id, "age", "Number")
    cm.new_field(list_id, "subscription date", "Date")
    cm.new_field(list_id, "plan", "MultiSelectOne", ["Gold", "Silver"])
    cm.new_field(list_id, "topics", "MultiSelectMany", ["news", "sport", "arts"])
    cm.new_field(list_id, "country", "Country")
    return list_id


def _fields(cm: CM, list_id: str, email: str = "f@example.com") -> list[tuple[str, str]]:
    return [(item["Key"], item["Value"]) for item in cm.subscribers(list_id)[email]["CustomFields"]]


def _send(cm: CM, list_id: str, *fields: dict[str, Any]) -> None:
    assert cm.import_rows(list_id, [row("f@example.com", CustomFields=list(fields))]).status_code == 201


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ("website", "https://example.com", "https://example.com"),
        ("[website]", "x" * 250, "x" * 250),
        ("WEBSITE", "x" * 251, None),
        ("age", "24", "24"),
        ("[age]", 24, "24"),
        ("age", "-1.5", "-1.5"),
        ("age", "twenty", None),
        ("subscription date", "2010-03-09", "2010-03-09"),
        ("[subscriptiondate]", "2010/3/9", "2010-03-09"),
        ("subscriptiondate", "1899-12-31", None),
        ("subscription date", "2076-06-07", None),
        ("subscription date", "09/03/2010", None),
        ("plan", "gold", "Gold"),
        ("plan", "Bronze", None),
        ("country", "australia", "Australia"),
        ("country", "Atlantis", None),
        ("nosuchfield", "anything", None),
    ],
)
def test_custom_field_values_are_typed(
    cm: CM, typed_list: str, key: str, value: Any, stored: str | None
) -> None:
    _send(cm, typed_list, {"Key": key, "Value": value})
    values = [value for _, value in _fields(cm, typed_list)]
    assert values == ([stored] if stored is not None else [])


def test_multi_select_many_clear_and_unchanged_fields(cm: CM, typed_list: str) -> None:
    _send(
        cm,
        typed_list,
        {"Key": "website", "Value": "https://a.example"},
        {"Key": "topics", "Value": "news"},
        {"Key": "topics", "Value": "ARTS"},
    )
    assert _fields(cm, typed_list) == [
        ("website", "https://a.example"),
        ("topics", "news"),
        ("topics", "arts"),
    ]
    _send(cm, typed_list, {"Key": "topics", "Value": "sport"})  # replaces the selection; website is kept
    assert _fields(cm, typed_list) == [("website", "https://a.example"), ("topics", "sport")]
    _send(cm, typed_list, {"Key": "website", "Value": ""})  # empty without Clear: no change
    assert ("website", "https://a.example") in _fields(cm, typed_list)
    _send(cm, typed_list, {"Key": "topics", "Value": "news"}, {"Key": "topics", "Value": "arts"})
    _send(cm, typed_list, {"key": "topics", "value": "news", "clear": True})
    assert _fields(cm, typed_list) == [("website", "https://a.example"), ("topics", "arts")]
    _send(
        cm,
        typed_list,
        {"Key": "website", "Value": "", "Clear": True},
        {"Key": "topics", "Value": "", "Clear": True},
    )
    assert _fields(cm, typed_list) == []


def test_custom_fields_must_be_a_list_of_objects(cm: CM, typed_list: str) -> None:
    response = cm.import_rows(typed_list, [row("f@example.com", CustomFields="website=x")])
    assert response.status_code == 400
    assert response.json()["Message"].startswith("Failed to deserialize your request.")
    assert cm.subscribers(typed_list) == {}
