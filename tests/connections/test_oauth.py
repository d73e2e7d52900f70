"""The OAuth connect flow end to end: our API → the sandbox's consent page → our callback."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from segmentsync.auth.models import Role
from segmentsync.connections.access import credentials_for
from segmentsync.connections.models import Connection, OAuthState
from segmentsync.db import transaction, utcnow
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox

from .browser import consent, land
from .conftest import MakeUser, OAuthApps, Person, cc_create, cc_list, cm_list, load, save

START = "/api/v1/connections/oauth/start"


def start(client: TestClient, admin: Person, **draft: Any) -> dict[str, Any]:
    body = {"type": "constant_contact", "name": "CC via OAuth", "consent": True, **draft}
    answer = client.post(START, json=body, headers=admin.auth)
    assert answer.status_code == 200, answer.text
    started: dict[str, Any] = answer.json()
    return started


def connections(runtime: Runtime) -> list[Connection]:
    with runtime.sessions() as session:
        return list(session.scalars(sa.select(Connection)))


def test_campaign_monitor_oauth(
    client: TestClient, runtime: Runtime, sandbox: Sandbox, admin: Person, oauth_apps: OAuthApps
) -> None:
    sandbox.create_cm_client("Other")
    chosen = sandbox.create_cm_client("Acme")
    list_id = cm_list(sandbox, chosen, "Newsletter")
    started = start(
        client, admin, type="campaign_monitor", name="CM via OAuth", shared_with_contributors=True
    )
    assert started["authorize_url"].startswith(sandbox.campaign_monitor_oauth + "?")
    assert f"client_id={oauth_apps.cm_client_id}" in started["authorize_url"]

    location = consent(started["authorize_url"], choose={"client_id": chosen["ClientID"]})
    answer = land(client, admin, location)

    assert answer.status_code == 303, answer.text
    [connection] = connections(runtime)
    assert answer.headers["location"] == f"/connections/{connection.id}"
    assert connection.name == "CM via OAuth"
    assert connection.settings["auth_method"] == "oauth"
    assert connection.settings["client_id"] == chosen["ClientID"]
    assert connection.settings["account_name"] == "Acme"
    assert connection.consent_by_id == admin.id
    assert connection.export_user_id == admin.id
    assert connection.token_expires_at is not None
    credentials = credentials_for(vault=runtime.vault, connection=connection)
    assert credentials.access_token
    assert credentials.refresh_token
    lists = client.get(f"/api/v1/connections/{connection.id}/lists", headers=admin.auth)
    assert lists.status_code == 200, lists.text
    assert [item["list_id"] for item in lists.json()["items"]] == [list_id]


def test_constant_contact_oauth_with_pkce(
    client: TestClient, runtime: Runtime, sandbox: Sandbox, admin: Person, oauth_apps: OAuthApps
) -> None:
    sandbox.create_cc_account("Shop")
    started = start(client, admin)
    url = started["authorize_url"]
    assert url.startswith(sandbox.constant_contact_oauth + "/authorize?")
    assert "code_challenge_method=S256" in url
    assert "scope=account_read+contact_data+offline_access" in url
    with runtime.sessions() as session:
        state = session.get(OAuthState, started["state"])
        assert state is not None
        assert state.code_verifier is not None
        verifier = runtime.vault.decrypt(state.code_verifier)["code_verifier"]
        assert verifier not in state.code_verifier  # kept encrypted

    answer = land(client, admin, consent(url))

    assert answer.status_code == 303, answer.text
    [connection] = connections(runtime)
    assert connection.settings["oauth_client_id"] == oauth_apps.cc_client_id
    access_token = credentials_for(vault=runtime.vault, connection=connection).access_token
    assert access_token is not None
    list_id = cc_list(sandbox, access_token, "Customers")
    lists = client.get(f"/api/v1/connections/{connection.id}/lists", headers=admin.auth)
    assert [item["list_id"] for item in lists.json()["items"]] == [list_id]


def test_the_emulator_checks_our_pkce_verifier(
    client: TestClient, runtime: Runtime, sandbox: Sandbox, admin: Person
) -> None:
    started = start(client, admin)
    with transaction(runtime.sessions) as session:  # as if another flow's verifier were sent
        state = session.get(OAuthState, started["state"])
        assert state is not None
        state.code_verifier = runtime.vault.encrypt({"code_verifier": "x" * 64})

    answer = land(client, admin, consent(started["authorize_url"]))

    assert answer.status_code == 400
    assert "invalid_grant" in answer.json()["error"]["message"]
    assert connections(runtime) == []


def test_a_state_is_single_use(client: TestClient, runtime: Runtime, sandbox: Sandbox, admin: Person) -> None:
    location = consent(start(client, admin)["authorize_url"])
    assert land(client, admin, location).status_code == 303

    again = land(client, admin, location)

    assert again.status_code == 403
    assert again.json()["error"]["code"] == "oauth_state"
    assert len(connections(runtime)) == 1


def test_an_unknown_state_is_refused(client: TestClient, sandbox: Sandbox, admin: Person) -> None:
    location = consent(start(client, admin)["authorize_url"])
    forged = location.replace("state=", "state=forged")

    answer = land(client, admin, forged)

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "oauth_state"


def test_a_state_belongs_to_the_admin_who_started(
    client: TestClient, runtime: Runtime, sandbox: Sandbox, admin: Person, make_user: MakeUser
) -> None:
    other = make_user("otto@example.com", Role.ADMIN)
    location = consent(start(client, admin)["authorize_url"])

    refused = land(client, other, location)

    assert refused.status_code == 403
    assert "another user" in refused.json()["error"]["message"]
    assert land(client, admin, location).status_code == 303  # not spent by the refusal


def test_a_state_expires_after_ten_minutes(
    client: TestClient, runtime: Runtime, sandbox: Sandbox, admin: Person
) -> None:
    location = consent(start(client, admin)["authorize_url"])
    runtime.clock = lambda: utcnow() + timedelta(minutes=11)

    answer = land(client, admin, location)

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "oauth_state_expired"
    assert connections(runtime) == []
    with runtime.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(OAuthState)) == 0


def test_a_denial_is_a_clear_error(
    client: TestClient, runtime: Runtime, sandbox: Sandbox, admin: Person
) -> None:
    location = consent(start(client, admin)["authorize_url"], decision="deny")

    answer = land(client, admin, location)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "oauth_denied"
    assert "access_denied" in answer.json()["error"]["message"]
    assert connections(runtime) == []


def test_no_consent_no_authorization(client: TestClient, sandbox: Sandbox, admin: Person) -> None:
    answer = client.post(
        START, json={"type": "constant_contact", "name": "X", "consent": False}, headers=admin.auth
    )

    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "consent"


def test_reauthenticate_through_oauth(
    client: TestClient, runtime: Runtime, sandbox: Sandbox, admin: Person
) -> None:
    connection = save(runtime, cc_create(account=sandbox.create_cc_account("Shop")), admin)
    before = credentials_for(vault=runtime.vault, connection=load(runtime, connection.id))
    answer = client.post(f"/api/v1/connections/{connection.id}/oauth/start", headers=admin.auth)
    assert answer.status_code == 200, answer.text

    landed = land(client, admin, consent(answer.json()["authorize_url"]))

    assert landed.status_code == 303
    assert landed.headers["location"] == f"/connections/{connection.id}"
    stored = load(runtime, connection.id)
    after = credentials_for(vault=runtime.vault, connection=stored)
    assert after.access_token != before.access_token
    assert stored.secrets_version == 2
    assert stored.settings["oauth_client_id"] != before.oauth_client_id  # now our registered app's


@pytest.mark.parametrize("who", ["contributor", "viewer"])
def test_only_admins_start_oauth(
    client: TestClient, sandbox: Sandbox, who: str, request: pytest.FixtureRequest
) -> None:
    person: Person = request.getfixturevalue(who)
    answer = client.post(
        START, json={"type": "constant_contact", "name": "X", "consent": True}, headers=person.auth
    )
    assert answer.status_code == 403


def test_a_browser_whose_authorization_fails_is_sent_back_to_the_wizard(
    client: TestClient, runtime: Runtime, sandbox: Sandbox
) -> None:
    from segmentsync.auth import service as auth_service

    with transaction(runtime.sessions) as session:
        auth_service.create_user(
            session=session, email="ada@example.com", role=Role.ADMIN, password="a long password", actor=None
        )
    signed_in = client.post(
        "/api/v1/session", json={"email": "ada@example.com", "password": "a long password"}
    )
    csrf = signed_in.json()["csrf_token"]
    started = client.post(
        START,
        json={"type": "constant_contact", "name": "CC", "consent": True},
        headers={"X-CSRF-Token": csrf},
    )
    assert started.status_code == 200, started.text
    location = consent(started.json()["authorize_url"]).replace("state=", "state=forged")
    parts = urlsplit(location)

    answer = client.get(f"{parts.path}?{parts.query}", follow_redirects=False)  # the session cookie only

    assert answer.status_code == 303
    assert answer.headers["location"] == "/connections/new?resume=1#step-6"  # back at step 6
    page = client.get("/connections/new?resume=1")
    assert "start connecting again" in page.text  # the reason is shown there
    assert connections(runtime) == []
