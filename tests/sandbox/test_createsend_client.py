"""The official Campaign Monitor client ``createsend`` works unchanged against the emulator.

``createsend`` always speaks TLS; the only changes allowed are swapping its connection class for a
plain HTTP one and pointing ``base_uri``/``oauth_token_uri`` at the sandbox.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from typing import Any

import createsend
import createsend.createsend as createsend_module
import pytest
from cm_api import CM
from createsend import CreateSend, List, Subscriber

from segmentsync.sandbox.launcher import Sandbox


@pytest.fixture
def cm(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[CM]:
    monkeypatch.setattr(createsend_module, "VerifiedHTTPSConnection", http.client.HTTPConnection)
    monkeypatch.setattr(CreateSend, "base_uri", f"{sandbox.campaign_monitor_url}/api/v3.3")
    monkeypatch.setattr(CreateSend, "oauth_token_uri", f"{sandbox.campaign_monitor_url}/oauth/token")
    helper = CM(sandbox)
    yield helper
    helper.close()


@pytest.fixture
def auth(cm: CM) -> dict[str, str]:
    return {"api_key": cm.api_key}


@pytest.fixture
def list_id(cm: CM, auth: dict[str, str]) -> str:
    list_id: str = List(auth).create(cm.client_id, "Newsletter", "", False, "", "AllClientLists")
    return list_id


def test_clients_and_list_details(cm: CM, auth: dict[str, str], list_id: str) -> None:
    clients = CreateSend(auth).clients()
    assert [(c.ClientID, c.Name) for c in clients] == [(cm.client_id, "Acme")]
    details = List(auth, list_id).details()
    assert (details.ListID, details.Title, details.UnsubscribeSetting) == (
        list_id,
        "Newsletter",
        "AllClientLists",
    )
    assert CreateSend(auth).systemdate()


def test_custom_fields(auth: dict[str, str], list_id: str) -> None:
    mailing_list = List(auth, list_id)
    assert mailing_list.create_custom_field("website", "Text") == "[website]"
    assert (
        mailing_list.create_custom_field("interests", "MultiSelectMany", ["a", "b"], False) == "[interests]"
    )
    assert mailing_list.update_custom_field("[website]", "home page", True) == "[homepage]"
    mailing_list.update_custom_field_options("[interests]", ["c"], True)
    fields = mailing_list.custom_fields()
    assert [(f.Key, f.DataType, f.FieldOptions) for f in fields] == [
        ("[homepage]", "Text", []),
        ("[interests]", "MultiSelectMany", ["a", "b", "c"]),
    ]
    mailing_list.delete_custom_field("[interests]")
    assert [f.Key for f in mailing_list.custom_fields()] == ["[homepage]"]


def test_add_get_update(auth: dict[str, str], list_id: str) -> None:
    List(auth, list_id).create_custom_field("website", "Text")
    fields = [{"Key": "website", "Value": "https://example.com/"}]
    assert (
        Subscriber(auth).add(list_id, "subscriber@example.com", "Sub", fields, True, "Yes")
        == "subscriber@example.com"
    )
    got = Subscriber(auth).get(list_id, "subscriber@example.com")  # sends includetrackingpreference=False
    assert (got.Name, got.State, got.CustomFields[0].Value) == ("Sub", "Active", "https://example.com/")
    assert not hasattr(got, "ConsentToTrack")
    subscriber = Subscriber(auth, list_id, "subscriber@example.com")
    subscriber.update("renamed@example.com", "Renamed", [], True, "No")
    got = Subscriber(auth).get(list_id, "renamed@example.com", include_tracking_preference=True)
    assert (got.Name, got.ConsentToTrack) == ("Renamed", "No")


def test_import_with_partial_failure(cm: CM, auth: dict[str, str], list_id: str) -> None:
    rows: list[dict[str, Any]] = [
        {"EmailAddress": "example+1@example.com", "Name": "One", "ConsentToTrack": "Yes"},
        {"EmailAddress": "example+2@example", "Name": "Bad", "ConsentToTrack": "Yes"},
        {"EmailAddress": "example+3@example.com", "Name": "Three", "ConsentToTrack": "Unchanged"},
    ]
    result = Subscriber(auth).import_subscribers(list_id, rows, True)
    assert (result.TotalUniqueEmailsSubmitted, result.TotalNewSubscribers) == (3, 2)
    assert [(f.EmailAddress, f.Code) for f in result.FailureDetails] == [("example+2@example", 1)]
    ok = Subscriber(auth).import_subscribers(list_id, rows[:1], True)
    assert (ok.TotalExistingSubscribers, ok.FailureDetails) == (1, [])
    with pytest.raises(createsend.BadRequest) as raised:
        Subscriber(auth).import_subscribers(list_id, [], True)
    assert raised.value.data.Code == 212
    assert set(cm.subscribers(list_id)) == {"example+1@example.com", "example+3@example.com"}


def test_active_listing_unsubscribe_and_delete(auth: dict[str, str], list_id: str) -> None:
    rows = [{"EmailAddress": f"p{i}@example.com", "Name": f"P{i}", "ConsentToTrack": "Yes"} for i in range(3)]
    Subscriber(auth).import_subscribers(list_id, rows, True)
    Subscriber(auth, list_id, "p0@example.com").unsubscribe()
    Subscriber(auth, list_id, "p1@example.com").delete()
    mailing_list = List(auth, list_id)
    active = mailing_list.active()
    assert ([r.EmailAddress for r in active.Results], active.TotalNumberOfRecords) == (["p2@example.com"], 1)
    assert [r.EmailAddress for r in mailing_list.unsubscribed().Results] == ["p0@example.com"]
    assert [r.State for r in mailing_list.deleted(include_tracking_preference=True).Results] == ["Deleted"]
    stats = mailing_list.stats()
    assert (stats.TotalActiveSubscribers, stats.TotalUnsubscribes, stats.TotalDeleted) == (1, 1, 1)


def test_errors_map_to_the_clients_exceptions(auth: dict[str, str], list_id: str) -> None:
    with pytest.raises(createsend.BadRequest) as raised:
        Subscriber(auth).get(list_id, "nobody@example.com")
    assert raised.value.data.Code == 203
    with pytest.raises(createsend.Unauthorized) as unauthorized:
        List({"api_key": "wrong"}, list_id).details()
    assert unauthorized.value.data.Code == 50


def test_oauth_exchange_refresh_and_expired_token(cm: CM) -> None:
    tokens = cm.oauth_token()
    app = tokens["app"]
    session = CreateSend({"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]})
    assert [c.ClientID for c in session.clients()] == [cm.client_id]
    cm.control("tokens/expire", {"access_token": tokens["access_token"]})
    with pytest.raises(createsend.ExpiredOAuthToken) as expired:
        session.clients()
    assert (expired.value.data.Code, expired.value.data.Message) == (121, "Expired OAuth Token")
    access_token, expires_in, refresh_token = session.refresh_token()
    assert expires_in == 1209600
    assert refresh_token != tokens["refresh_token"]
    assert access_token != tokens["access_token"]
    assert [c.ClientID for c in session.clients()] == [cm.client_id]
    # the token endpoint's error comes in a 200, where the client looks for it (a 400 made it raise
    # BadRequest, whose str() then failed: the body has no Code/Message)
    with pytest.raises(Exception, match=r"^Error exchanging code for access token: invalid_grant - ") as bad:
        CreateSend().exchange_token(
            app["client_id"], app["client_secret"], "http://127.0.0.1:9/callback", "bad"
        )
    assert type(bad.value) is Exception
    assert "Specified code was invalid or expired" in str(bad.value)


def test_refresh_with_a_revoked_token_reaches_the_client_as_an_error_body(cm: CM) -> None:
    """createsend-python's refresh_token() does not look for ``error`` (exchange_token does): it
    fails reading ``access_token`` from the answer. The answer itself is the documented error."""
    tokens = cm.oauth_token()
    cm.control("tokens/revoke", {"access_token": tokens["access_token"]})
    session = CreateSend({"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]})
    with pytest.raises(AttributeError, match="access_token"):
        session.refresh_token()
    answer = cm.http.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert (answer.status_code, answer.json()["error"]) == (200, "invalid_grant")


@pytest.mark.parametrize("version", ["v3", "v3.1", "v3.2"])
def test_an_older_api_version_is_refused_naming_the_one_served(
    cm: CM, auth: dict[str, str], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    """createsend-node's default base is /api/v3: a client left on it learns which one to use."""
    monkeypatch.setattr(CreateSend, "base_uri", f"{sandbox.campaign_monitor_url}/api/{version}")
    with pytest.raises(
        createsend.ClientError,
        match=rf"^Code: 410 API version {re.escape(version)} is not available: use /api/v3\.3",
    ):
        CreateSend(auth).clients()
    answer = cm.http.post(f"/api/{version}/subscribers/abc.json", json={})
    assert answer.status_code == 410
    assert answer.json()["Code"] == 410
    assert cm.http.get("/api/v3.4/clients.json").status_code == 404  # not a version that existed
