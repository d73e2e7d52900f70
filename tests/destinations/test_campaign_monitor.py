"""Campaign Monitor specifics: import results per row, removal modes, deleted members coming back."""

from __future__ import annotations

import orjson
import pytest

from segmentsync.destinations.base import Credentials, FieldType, Member
from segmentsync.errors import ConfigError
from segmentsync.exports.models import Outcome
from segmentsync.sandbox.launcher import Sandbox

from .fakes import FAST, FakeTime, Script, json_response
from .platforms import CampaignMonitor

LIST_ID = "a" * 32


def test_an_import_answer_becomes_one_outcome_per_row() -> None:
    """A 400 Code 210 is not a failed batch; a throttled row goes again; skipped rows say why."""
    failures = [
        {"EmailAddress": "bad@example", "Code": 1, "Message": "Invalid Email Address"},
        {
            "EmailAddress": "gone@example.com",
            "Code": 206,
            "Message": "Email Address exists in unsubscribed list.",
        },
        {
            "EmailAddress": "busy@example.com",
            "Code": 429,
            "Message": "Subscriber was added too many times too quickly",
        },
    ]
    partial = {"TotalNewSubscribers": 1, "TotalExistingSubscribers": 1, "FailureDetails": failures}
    script = Script(
        json_response(
            400, {"Code": 210, "Message": "Subscriber Import had some failures", "ResultData": partial}
        ),
        json_response(201, {"TotalNewSubscribers": 1, "TotalExistingSubscribers": 0, "FailureDetails": []}),
    )
    time = FakeTime()
    destination = CampaignMonitorClient(script, time)
    members = [
        Member("new@example.com", {"Name": "New"}, "Yes", delivered_before=False),
        Member("bad@example", {}, "Yes"),
        Member("old@example.com", {"Name": "Old"}, "No", delivered_before=True),
        Member("gone@example.com", {}, "Yes"),
        Member("busy@example.com", {}, "yes"),
        Member("odd@example.com", {}, "maybe"),
    ]
    results = destination.upsert(LIST_ID, members)
    assert [(r.outcome, r.code) for r in results] == [
        (Outcome.NEW, None),
        (Outcome.REJECTED, "1"),
        (Outcome.UPDATED, None),
        (Outcome.SKIPPED, "206"),
        (Outcome.NEW, None),
        (Outcome.REJECTED, "consent_to_track"),
    ]
    first, second = (orjson.loads(request.content) for request in script.requests)
    assert first["Resubscribe"] is False
    assert first["QueueSubscriptionBasedAutoResponders"] is False
    assert first["RestartSubscriptionBasedAutoresponders"] is False
    assert [row["ConsentToTrack"] for row in first["Subscribers"]] == ["Yes", "Yes", "No", "Yes", "Yes"]
    assert [row["EmailAddress"] for row in second["Subscribers"]] == ["busy@example.com"]
    assert time.slept  # the throttled row waited before it went again


def CampaignMonitorClient(script: Script, time: FakeTime):  # type: ignore[no-untyped-def]  # N802: reads like the class it builds
    from segmentsync.destinations import create_destination

    return create_destination(
        "campaign_monitor",
        credentials=Credentials(api_key="key", client_id="c" * 32),
        api_url="https://cm.test/api/v3.3",
        oauth_url="https://cm.test/oauth",
        on_tokens=None,
        transport=script.transport,
        clock=time.clock,
        sleep=time.sleep,
        tuning=FAST,
    )


def test_values_are_fitted_to_the_list_fields_before_sending() -> None:
    fields = [
        {
            "FieldName": "Age",
            "Key": "[Age]",
            "DataType": "Number",
            "FieldOptions": [],
            "VisibleInPreferenceCenter": True,
        },
        {
            "FieldName": "Joined",
            "Key": "[Joined]",
            "DataType": "Date",
            "FieldOptions": [],
            "VisibleInPreferenceCenter": True,
        },
        {
            "FieldName": "Tags",
            "Key": "[Tags]",
            "DataType": "MultiSelectMany",
            "FieldOptions": ["Red", "Blue"],
            "VisibleInPreferenceCenter": True,
        },
        {
            "FieldName": "City",
            "Key": "[City]",
            "DataType": "Text",
            "FieldOptions": [],
            "VisibleInPreferenceCenter": True,
        },
    ]
    script = Script(
        json_response(200, fields),
        json_response(201, {"TotalNewSubscribers": 1, "FailureDetails": []}),
    )
    member = Member(
        "a@example.com",
        {"Name": "N" * 300, "Age": "forty", "[Joined]": "2024-02-30", "tags": ["red", "green"], "City": None},
        "Yes",
    )
    [result] = CampaignMonitorClient(script, FakeTime()).upsert(LIST_ID, [member])
    assert result.outcome is Outcome.NEW
    assert result.message is not None
    for expected in (
        "Name: trimmed to 250",
        "Age: 'forty' is not a number",
        "Joined: '2024-02-30' is not a date",
        "'green' not among",
    ):
        assert expected in result.message
    row = orjson.loads(script.requests[1].content)["Subscribers"][0]
    assert len(row["Name"]) == 250
    assert row["CustomFields"] == [
        {"Key": "Tags", "Value": "Red"},
        {"Key": "City", "Value": "", "Clear": True},
    ]


@pytest.fixture
def cm(sandbox: Sandbox) -> CampaignMonitor:
    return CampaignMonitor(sandbox)


def test_unsubscribe_mode_unsubscribes_and_delete_mode_deletes(cm: CampaignMonitor) -> None:
    destination = cm.destination()
    list_id = cm.new_list("Modes")
    destination.upsert(list_id, [Member(f"p{i}@example.com", {}, "Yes") for i in range(2)])
    assert destination.remove(list_id, ["p0@example.com"], mode="unsubscribe")[0].outcome is Outcome.REMOVED
    assert destination.remove(list_id, ["p1@example.com"], mode="delete")[0].outcome is Outcome.REMOVED
    seen = cm.read_back(list_id)
    assert (seen["p0@example.com"].state, seen["p1@example.com"].state) == ("unsubscribed", "deleted")
    destination.close()


def test_a_deleted_member_who_comes_back_is_added_back(cm: CampaignMonitor) -> None:
    destination = cm.destination()
    list_id = cm.new_list("Comeback")
    member = Member("back@example.com", {"Name": "Back"}, "Yes")
    destination.upsert(list_id, [member])
    destination.remove(list_id, [member.email])
    [result] = destination.upsert(list_id, [member])
    assert result.outcome is Outcome.UPDATED
    assert "added back" in (result.message or "")
    assert cm.read_back(list_id)["back@example.com"].state == "active"
    destination.close()


def test_more_than_a_thousand_rows_go_in_several_imports(cm: CampaignMonitor) -> None:
    destination = cm.destination()
    list_id = cm.new_list("Big")
    key = destination.create_custom_field(list_id, "Plan", FieldType.SELECT_ONE, options=("Free", "Pro")).key
    results = destination.upsert(
        list_id, [Member(f"m{i}@example.com", {key: "pro"}, "Yes") for i in range(2100)]
    )
    destination.close()
    assert [r.outcome for r in results] == [Outcome.NEW] * 2100
    imports = cm.stats()["requests"]["POST /api/v3.3/subscribers/{listid}/import.json"]
    assert imports == 3
    assert cm.read_back(list_id)["m7@example.com"].fields == {"Plan": "Pro"}


def test_the_client_is_found_or_refused_by_its_id(cm: CampaignMonitor) -> None:
    alone = cm.destination(Credentials(api_key=cm.api_key))
    assert alone.verify().account_id == cm.client_id  # the key sees one client: that one
    alone.close()
    other = cm.sandbox.create_cm_client("Another client")["ClientID"]
    wrong = cm.destination(Credentials(api_key=cm.api_key, client_id=other))
    with pytest.raises(ConfigError, match="not visible"):
        wrong.verify()
    wrong.close()
