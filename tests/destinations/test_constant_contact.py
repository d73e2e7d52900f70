"""Constant Contact specifics: activity counters to rows, polling, contact ids for removal."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson
import pytest

from segmentsync.destinations import constant_contact, create_destination, progress
from segmentsync.destinations.base import Credentials, Destination, Member
from segmentsync.errors import Retriable
from segmentsync.exports.models import Outcome
from segmentsync.sandbox.launcher import Sandbox

from .fakes import FAST, FakeTime, Script, json_response
from .platforms import ConstantContact

LIST_ID = "11111111-2222-3333-4444-555555555555"
LONG = "a-very-long-but-perfectly-valid-address-of-sixty-chars@example.com"


class FakePlatform:
    """Answers like Constant Contact for one list; activities end as ``states`` say."""

    def __init__(self, counts: dict[str, int], *, members: int = 10, states: list[str] | None = None) -> None:
        self.counts = counts
        self.members = members
        self.added = 0
        self.states = states or ["completed"]
        self.unsubscribed = ["gone@example.com"]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith(f"/contact_lists/{LIST_ID}"):
            self.members, self.added = self.members + self.added, 0
            return json_response(200, {"list_id": LIST_ID, "name": "L", "membership_count": self.members})
        if path.endswith(("/contacts_json_import", "/remove_list_memberships")):
            return json_response(201, {"activity_id": "act", "state": "initialized"})
        if path.endswith("/activities/act"):
            return self._activity()
        if path.endswith("/contacts"):
            return self._contacts(request)
        raise AssertionError(f"unexpected {request.method} {request.url}")

    def _activity(self) -> httpx.Response:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if state == "completed":
            self.added = self.counts.pop("_added", 0)
        errors = (
            ["1 contact not imported: the email address is not valid."]
            if self.counts.get("correctable_count")
            else []
        )
        return json_response(
            200, {"activity_id": "act", "state": state, "status": self.counts, "activity_errors": errors}
        )

    def _contacts(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if params.get("status") == "unsubscribed":
            found = self.unsubscribed
        elif "email" in params:
            found = [params["email"]]
        else:
            found = [f"p{i}@example.com" for i in range(self.members)]
        return json_response(
            200, {"contacts": [{"contact_id": f"id-{e}", "email_address": {"address": e}} for e in found]}
        )


def cc(script: Script, app: str) -> Destination:
    time = FakeTime()
    return create_destination(
        "constant_contact",
        credentials=Credentials(access_token="token", oauth_client_id=app),
        api_url="https://cc.test/v3",
        oauth_url="https://cc.test/oauth2/default/v1",
        on_tokens=None,
        transport=script.transport,
        clock=time.clock,
        sleep=time.sleep,
        tuning=FAST,
    )


def test_activity_counters_are_attributed_to_rows(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # this scripted platform answers the same counters for every import: no looking for the
    # unexplained refusal by importing parts again (the sandbox test below does that)
    monkeypatch.setattr(constant_contact, "BISECT_IMPORTS", 0)
    counts = {
        "person_count": 4,
        "correctable_count": 1,
        "error_count": 1,
        "cannot_add_to_list_count": 1,
        "_added": 1,
    }
    platform = FakePlatform(counts)
    members = [
        Member("new@example.com", {"first_name": "N"}, delivered_before=False),
        Member("old@example.com", {"first_name": "O"}, delivered_before=True),
        Member("gone@example.com"),
        Member(LONG),
        Member("nope@@example.com"),
    ]
    with caplog.at_level(logging.WARNING):
        results = cc(Script(platform), "app-counters").upsert(LIST_ID, members)
    assert [(r.outcome, r.code) for r in results] == [
        (Outcome.NEW, None),
        (Outcome.UPDATED, None),
        (Outcome.SKIPPED, "unsubscribed"),
        (Outcome.REJECTED, "correctable"),  # the doubtful row takes the platform's refusal
        (Outcome.REJECTED, "invalid_email"),  # never sent
    ]
    assert "email address is not valid" in (results[3].message or "")
    assert "refused 1 rows of a batch without saying which" in caplog.text  # the error_count


def test_import_rows_use_the_flat_vocabulary_and_never_blank() -> None:
    script = Script(FakePlatform({"person_count": 1, "_added": 1}))
    member = Member("a@example.com", {"first_name": "F" * 60, "last_name": None, "job_title": "CTO"})
    [result] = cc(script, "app-rows").upsert(LIST_ID, [member])
    assert "first_name: trimmed to 50" in (result.message or "")
    body = orjson.loads(next(r.content for r in script.requests if r.url.path.endswith("json_import")))
    assert body == {
        "import_data": [{"email": "a@example.com", "first_name": "F" * 50, "job_title": "CTO"}],
        "list_ids": [LIST_ID],
    }


def test_a_failed_activity_is_submitted_again_then_given_up() -> None:
    platform = FakePlatform({"person_count": 1}, states=["processing", "failed", "timed_out", "failed"])
    script = Script(platform)
    with pytest.raises(Retriable, match="ended failed"):
        cc(script, "app-failed").upsert(LIST_ID, [Member("a@example.com")])
    assert sum(r.url.path.endswith("json_import") for r in script.requests) == 3


@pytest.mark.parametrize(("members", "emails", "lookups"), [(10_000, 3, 3), (100, 3, 0)])
def test_contact_ids_are_found_the_cheaper_way(members: int, emails: int, lookups: int) -> None:
    script = Script(FakePlatform({}, members=members))
    targets = [f"p{i}@example.com" for i in range(emails)]
    results = cc(script, f"app-ids-{members}").remove(LIST_ID, targets)
    assert [r.outcome for r in results] == [Outcome.REMOVED] * emails
    by_email = [r for r in script.requests if r.url.path.endswith("/contacts") and "email" in r.url.params]
    assert len(by_email) == lookups
    removal: dict[str, Any] = orjson.loads(
        next(r.content for r in script.requests if r.url.path.endswith("memberships"))
    )
    assert removal == {"source": {"contact_ids": [f"id-{e}" for e in targets]}, "list_ids": [LIST_ID]}


def test_activities_that_take_time_are_polled_until_done(sandbox: Sandbox) -> None:
    platform = ConstantContact(sandbox)
    platform.faults(instant_activities=False, activity_rows_per_second=3000)
    destination = platform.destination()
    list_id = platform.new_list("Slow")
    results = destination.upsert(
        list_id, [Member(f"s{i}@example.com", {"first_name": "S"}) for i in range(3000)]
    )
    destination.close()
    assert {r.outcome for r in results} == {Outcome.NEW}
    assert len(platform.read_back(list_id)) == 3000
    assert platform.stats()["requests"]["GET /v3/activities/{activity_id}"] > 1


def test_rows_refused_without_a_word_are_found_by_importing_parts_again(sandbox: Sandbox) -> None:
    """Constant Contact counts the rows an import refused but does not say which: the destination
    imports halves of the batch again until each refused row stands alone."""
    platform = ConstantContact(sandbox)
    destination = platform.destination()
    list_id = platform.new_list("Refusals")
    refused = {7: "seven@example.c0m", 120: "hundred-twenty@example.c0m", 121: "next@example.c0m"}
    members = [Member(refused.get(i, f"m{i}@example.com"), {"first_name": "M"}) for i in range(200)]
    results = destination.upsert(list_id, members)
    destination.close()
    rejected = {i for i, result in enumerate(results) if result.outcome is Outcome.REJECTED}
    assert rejected == set(refused)
    assert {results[i].code for i in rejected} == {"correctable"}
    assert {r.outcome for i, r in enumerate(results) if i not in rejected} == {Outcome.NEW}
    assert sorted(platform.read_back(list_id)) == sorted(
        m.email for i, m in enumerate(members) if i not in refused
    )
    imports = platform.stats()["requests"]["POST /v3/activities/contacts_json_import"]
    assert 1 < imports <= 1 + 3 * 8  # the batch, then about log2(200) imports per refused row


def test_past_the_budget_refusals_stay_unattributed(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(constant_contact, "BISECT_IMPORTS", 2)
    platform = ConstantContact(sandbox)
    destination = platform.destination()
    list_id = platform.new_list("Budget")
    members = [Member("bad@example.c0m" if i == 50 else f"b{i}@example.com") for i in range(100)]
    results = destination.upsert(list_id, members)
    destination.close()
    assert Outcome.REJECTED not in {r.outcome for r in results}  # counted delivered, and logged
    assert platform.stats()["requests"]["POST /v3/activities/contacts_json_import"] == 3


def test_an_import_reports_the_platforms_progress_while_it_runs(sandbox: Sandbox) -> None:
    """The live progress moves with the platform's own: each poll's percent_done is reported as
    rows done, growing, never beyond the rows sent, and all of them once the activity completes."""
    platform = ConstantContact(sandbox)
    platform.faults(instant_activities=False, activity_rows_per_second=1500)
    destination = platform.destination()
    list_id = platform.new_list("Watched")
    reports: list[int] = []
    with progress.reporting(lambda part, rows: reports.append(rows)):
        destination.upsert(list_id, [Member(f"w{i}@example.com", {"first_name": "W"}) for i in range(3000)])
    destination.close()
    assert reports[-1] == 3000
    assert any(0 < rows < 3000 for rows in reports), reports  # seen while the platform worked
    assert reports == sorted(reports)
    progress.report("outside", 1)  # no hook: nothing happens


def test_the_account_is_named_by_its_organization(sandbox: Sandbox) -> None:
    """The account's name comes from ``/account/summary``, not its UUID; the id stays the id."""
    platform = ConstantContact(sandbox, organization_name="Acme Ltd", contact_email="owner@acme.example")
    destination = platform.destination()
    account = destination.verify()
    destination.close()
    assert (account.name, account.account_id) == ("Acme Ltd", platform.account["account_id"])
    assert platform.stats()["requests"]["GET /v3/account/summary"] == 1


def test_a_token_that_may_not_read_the_account_still_verifies(sandbox: Sandbox) -> None:
    """Without ``account_read`` the summary is a 403: the account is named by its id, and verify passes."""
    platform = ConstantContact(
        sandbox, organization_name="Acme Ltd", scopes=["contact_data", "offline_access"]
    )
    destination = platform.destination()
    account = destination.verify()
    destination.close()
    assert account.name == account.account_id == platform.account["account_id"]
    assert platform.stats()["statuses"].get("403") == 1
