"""Campaign Monitor emulator: API keys, the OAuth 2 flow, Bearer tokens, scopes and ownership."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cm_api import CM

from segmentsync.sandbox.launcher import Sandbox

REDIRECT = "http://127.0.0.1:9/callback"


@pytest.fixture
def cm(sandbox: Sandbox) -> Iterator[CM]:
    helper = CM(sandbox)
    yield helper
    helper.close()


def _basic(value: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(value.encode()).decode()}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic !!!not-base64"},
        _basic("no-such-key:x"),
        {"Authorization": "Token abc"},
    ],
    ids=["missing", "garbled", "unknown key", "other scheme"],
)
def test_bad_basic_auth_is_code_50(cm: CM, headers: dict[str, str]) -> None:
    response = cm.http.get("/api/v3.3/clients.json", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {"Code": 50, "Message": "Must supply a valid HTTP Basic Authorization header"}


def test_unknown_key_can_answer_code_100(cm: CM) -> None:
    assert cm.control("faults", {"unknown_api_key_code": 100}).status_code == 200
    response = cm.http.get("/api/v3.3/clients.json", headers=_basic("nope:x"))
    assert response.json() == {"Code": 100, "Message": "Invalid API Key"}


def test_api_key_is_the_username_and_the_password_is_ignored(cm: CM) -> None:
    response = cm.http.get("/api/v3.3/clients.json", headers=_basic(f"{cm.api_key}:anything"))
    assert response.status_code == 200
    assert response.json() == [{"ClientID": cm.client_id, "Name": "Acme"}]


def test_client_key_cannot_touch_another_clients_data(cm: CM, sandbox: Sandbox) -> None:
    other = sandbox.create_cm_client("Other")
    list_id = cm.new_list()
    foreign = httpx.BasicAuth(other["ApiKey"], "x")
    response = cm.api("GET", f"/clients/{cm.client_id}/lists.json", auth=foreign)
    assert (response.status_code, response.json()) == (401, {"Code": 102, "Message": "Invalid ClientID"})
    response = cm.api("GET", f"/lists/{list_id}.json", auth=foreign)
    assert (response.status_code, response.json()) == (401, {"Code": 101, "Message": "Invalid ListID"})
    response = cm.api("GET", "/lists/0123456789abcdef0123456789abcdef.json")
    assert (response.status_code, response.json()["Code"]) == (401, 101)


def _authorize(cm: CM, app: dict[str, str], **params: str) -> httpx.Response:
    query = {
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "ImportSubscribers",
        "state": "xyz",
    }
    return cm.http.get("/oauth", params=query | params)


def test_authorize_page_lists_clients_with_stable_controls(cm: CM) -> None:
    app = cm.control("oauth_apps", {"Name": "Exporter"}).json()
    page = _authorize(cm, app, type="web_server")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<select id="client_id" name="client_id">' in html
    assert f'<option value="{cm.client_id}">Acme</option>' in html
    assert 'name="decision" value="approve"' in html
    assert 'name="decision" value="deny"' in html
    assert "http" not in html.replace(REDIRECT, "")  # no external assets


def _submit(cm: CM, app: dict[str, str], decision: str, client: str | None = None) -> httpx.Response:
    form = {
        "app_client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "ImportSubscribers",
        "state": "xyz",
        "client_id": client or cm.client_id,
        "decision": decision,
    }
    return cm.http.post("/oauth", data=form)


def _query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def test_approve_redirects_with_code_and_state_and_deny_with_access_denied(cm: CM) -> None:
    app = cm.control("oauth_apps", {}).json()
    approved = _query(_submit(cm, app, "approve"))
    assert approved["state"] == "xyz"
    assert len(approved["code"]) > 10
    assert _query(_submit(cm, app, "deny")) == {"error": "access_denied", "state": "xyz"}


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"scope": "ImportSubscribers,Telepathy"}, "unknown_scope"),
        ({"type": "user_agent"}, "invalid_request"),
    ],
)
def test_authorize_errors_go_back_to_the_redirect_uri(cm: CM, params: dict[str, str], error: str) -> None:
    app = cm.control("oauth_apps", {}).json()
    assert _query(_authorize(cm, app, **params)) == {"error": error, "state": "xyz"}


@pytest.mark.parametrize(
    "params", [{"client_id": "424242"}, {"redirect_uri": "not-a-url"}], ids=["unknown app", "bad redirect"]
)
def test_authorize_errors_that_cannot_redirect_show_a_page(cm: CM, params: dict[str, str]) -> None:
    app = cm.control("oauth_apps", {}).json()
    response = _authorize(cm, app, **params)
    assert response.status_code == 400
    assert "Authorization failed" in response.text


def test_registered_redirect_uri_is_enforced(cm: CM) -> None:
    app = cm.control("oauth_apps", {"Name": "x", "redirect_uri": "https://app.example.com/"}).json()
    assert _authorize(cm, app).status_code == 400


def _exchange(
    cm: CM, app: dict[str, str], code: str, changes: dict[str, str] | None = None
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "redirect_uri": REDIRECT,
        "code": code,
    }
    return cm.http.post("/oauth/token", data=form | (changes or {}))


def test_code_exchange_gives_14_day_tokens_once(cm: CM) -> None:
    app = cm.control("oauth_apps", {}).json()
    code = _query(_submit(cm, app, "approve"))["code"]
    response = _exchange(cm, app, code)
    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) == {"access_token", "expires_in", "refresh_token"}
    assert tokens["expires_in"] == 1209600
    again = _exchange(cm, app, code)
    assert (again.status_code, again.json()) == (
        200,
        {"error": "invalid_grant", "error_description": "Specified code was invalid or expired"},
    )


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"client_secret": "wrong"}, "invalid_client"),
        ({"redirect_uri": "http://127.0.0.1:9/other"}, "invalid_grant"),
        ({"code": "made-up"}, "invalid_grant"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
    ],
)
def test_code_exchange_errors(cm: CM, changes: dict[str, str], error: str) -> None:
    app = cm.control("oauth_apps", {}).json()
    code = _query(_submit(cm, app, "approve"))["code"]
    response = _exchange(cm, app, code, changes)
    assert response.status_code == 200  # the status the official clients expect (docs of the emulator)
    assert response.json()["error"] == error
    assert "access_token" not in response.json()


def test_refresh_issues_new_tokens_and_retires_the_old_refresh_token(cm: CM) -> None:
    tokens = cm.oauth_token()
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = cm.http.post("/oauth/token", data=form)
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["access_token"] != tokens["access_token"]
    assert new["refresh_token"] != tokens["refresh_token"]
    assert new["expires_in"] == 1209600
    assert cm.http.get("/api/v3.3/clients.json", headers=cm.bearer(new["access_token"])).status_code == 200
    reused = cm.http.post("/oauth/token", data=form)
    assert (reused.status_code, reused.json()["error"]) == (200, "invalid_grant")


def test_token_lifetime_is_configurable(cm: CM) -> None:
    cm.control("faults", {"access_token_seconds": 60})
    assert cm.oauth_token()["expires_in"] == 60


def test_bearer_token_sees_only_the_granted_client(cm: CM, sandbox: Sandbox) -> None:
    sandbox.create_cm_client("Not granted")
    tokens = cm.oauth_token()
    response = cm.http.get("/api/v3.3/clients.json", headers=cm.bearer(tokens["access_token"]))
    assert response.json() == [{"ClientID": cm.client_id, "Name": "Acme"}]
    everything = cm.oauth_token(client_choice="all")
    response = cm.http.get("/api/v3.3/clients.json", headers=cm.bearer(everything["access_token"]))
    assert len(response.json()) == 2


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("expire", {"Code": 121, "Message": "Expired OAuth Token"}),
        ("revoke", {"Code": 122, "Message": "Revoked OAuth Token"}),
    ],
)
def test_expired_and_revoked_tokens(cm: CM, action: str, body: dict[str, object]) -> None:
    tokens = cm.oauth_token()
    assert cm.control(f"tokens/{action}", {"access_token": tokens["access_token"]}).json() == {
        f"{action}d": 1
    }
    response = cm.http.get("/api/v3.3/clients.json", headers=cm.bearer(tokens["access_token"]))
    assert (response.status_code, response.json()) == (401, body)


def test_an_expired_token_can_still_be_refreshed_but_a_revoked_one_cannot(cm: CM) -> None:
    expired, revoked = cm.oauth_token(), cm.oauth_token()
    cm.control("tokens/expire", {"access_token": expired["access_token"]})
    cm.control("tokens/revoke", {"access_token": revoked["access_token"]})
    for tokens, granted in ((expired, True), (revoked, False)):
        form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        answer = cm.http.post("/oauth/token", data=form)
        assert answer.status_code == 200
        assert ("access_token" in answer.json()) is granted
        assert ("error" in answer.json()) is not granted


def test_unknown_bearer_token_is_code_120(cm: CM) -> None:
    response = cm.http.get("/api/v3.3/clients.json", headers=cm.bearer("made-up"))
    assert (response.status_code, response.json()) == (401, {"Code": 120, "Message": "Invalid OAuth Token"})


@pytest.mark.parametrize(
    ("scope", "method", "path", "allowed"),
    [
        ("ImportSubscribers", "POST", "/subscribers/{list}/import.json", True),
        ("ImportSubscribers", "GET", "/lists/{list}/customfields.json", False),
        ("ManageLists", "GET", "/lists/{list}/customfields.json", True),
        ("ManageLists", "POST", "/subscribers/{list}/import.json", False),
        ("ManageLists", "GET", "/lists/{list}/active.json", True),
        ("ViewReports", "GET", "/clients/{client}/lists.json", True),
        ("ViewReports", "GET", "/subscribers/{list}.json?email=a@example.com", False),
    ],
)
def test_scopes(cm: CM, scope: str, method: str, path: str, allowed: bool) -> None:
    list_id = cm.new_list()
    token = cm.oauth_token(scope=scope)["access_token"]
    body = {"Subscribers": [{"EmailAddress": "a@example.com", "ConsentToTrack": "Yes"}], "Resubscribe": True}
    url = "/api/v3.3" + path.format(list=list_id, client=cm.client_id)
    response = cm.http.request(method, url, headers=cm.bearer(token), json=body if method == "POST" else None)
    if allowed:
        assert response.status_code in (200, 201), response.text
    else:
        assert response.status_code == 401
        assert response.json() == {
            "Code": 60,
            "Message": "You do not have the required permission to access this resource",
        }
