"""Constant Contact emulator: Bearer tokens, the 401 answer, the OAuth 2 code flow (PKCE, rotation)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cc_api import CC, error_keys

from segmentsync.sandbox.launcher import Sandbox

REDIRECT = "http://127.0.0.1:9/callback"
UNAUTHORIZED = b'{"error_key":"unauthorized","error_message":"Unauthorized"}'


@pytest.fixture
def cc(sandbox: Sandbox) -> Iterator[CC]:
    helper = CC(sandbox)
    yield helper
    helper.close()


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}],
    ids=["missing", "unknown token", "other scheme", "empty"],
)
def test_every_v3_call_needs_a_valid_bearer_token(cc: CC, headers: dict[str, str]) -> None:
    response = cc.http.get("/v3/contact_lists", headers=headers)
    assert response.status_code == 401
    assert response.content == UNAUTHORIZED  # a bare object, 59 bytes, as captured
    assert response.headers["content-length"] == "59"
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"] == "Bearer realm=api.cc.email"
    assert response.headers["x-amzn-errortype"] == "UnauthorizedException"


def test_unknown_v3_path_authenticates_first_then_404(cc: CC) -> None:
    assert cc.http.get("/v3/nothing_here").status_code == 401
    response = cc.api("GET", "/nothing_here")
    assert response.status_code == 404
    assert error_keys(response) == ["contacts.api.not_found"]


def test_bearer_scheme_is_case_insensitive(cc: CC) -> None:
    response = cc.http.get("/v3/contact_lists", headers={"Authorization": f"bearer {cc.access_token}"})
    assert response.status_code == 200


def test_expired_token_gets_401_on_next_use(cc: CC, sandbox: Sandbox) -> None:
    other = sandbox.create_cc_account("Other")
    assert cc.api("GET", "/contact_lists").status_code == 200
    assert cc.control("tokens/expire", {"access_token": cc.access_token}).json() == {"expired": 1}
    response = cc.api("GET", "/contact_lists")
    assert (response.status_code, response.content) == (401, UNAUTHORIZED)
    assert cc.api("GET", "/contact_lists", token=other["access_token"]).status_code == 200
    assert cc.control("tokens/expire").json() == {"expired": 1}  # all that are left
    assert cc.api("GET", "/contact_lists", token=other["access_token"]).status_code == 401


def test_token_lifetime_is_configurable(cc: CC) -> None:
    cc.limits(access_token_seconds=0.001)
    tokens = _refresh(cc, cc.refresh_token)
    assert tokens["expires_in"] == 0
    time.sleep(0.05)  # let the 1 ms pass
    assert cc.api("GET", "/contact_lists", token=tokens["access_token"]).status_code == 401


def test_a_token_sees_only_its_own_account(cc: CC, sandbox: Sandbox) -> None:
    list_id = cc.new_list("Mine")
    other = sandbox.create_cc_account("Other")
    response = cc.api("GET", f"/contact_lists/{list_id}", token=other["access_token"])
    assert response.status_code == 404
    assert cc.api("GET", "/contact_lists", token=other["access_token"]).json()["lists"] == []


def test_accounts_get_a_jwt_shaped_24h_token(cc: CC) -> None:
    _header, claims, _signature = cc.access_token.split(".")
    payload: dict[str, Any] = httpx.Response(200, content=base64.urlsafe_b64decode(claims + "==")).json()
    assert payload["cid"] == cc.client_id
    assert payload["aud"] == "https://api.cc.email/v3"
    assert payload["exp"] - payload["iat"] == 86_400
    assert "contact_data" in payload["scp"]


# --- OAuth 2 authorization code flow -------------------------------------------------------------


def _authorize_params(app: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "contact_data offline_access",
        "state": "s-123",
    } | extra


def _approve(cc: CC, params: dict[str, str], account_id: str | None = None) -> httpx.Response:
    page = cc.http.get("/oauth2/default/v1/authorize", params=params)
    assert page.status_code == 200, page.text
    assert '<select id="account_id" name="account_id">' in page.text
    assert 'name="decision" value="approve"' in page.text
    form = params | {"account_id": account_id or cc.account_id, "decision": "approve"}
    return cc.http.post("/oauth2/default/v1/authorize", data=form)


def _code(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["s-123"]
    return query["code"][0]


def _exchange(cc: CC, app: dict[str, str], code: str, **extra: str) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT} | extra
    return cc.http.post(
        "/oauth2/default/v1/token", data=form, headers=_basic(app["client_id"], app["client_secret"])
    )


def _refresh(cc: CC, refresh_token: str, app: dict[str, str] | None = None) -> dict[str, Any]:
    app = app or {"client_id": cc.client_id, "client_secret": cc.client_secret}
    response = cc.http.post(
        "/oauth2/default/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers=_basic(app["client_id"], app["client_secret"]),
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture
def app(cc: CC) -> dict[str, str]:
    cc.limits(token_requests_per_second=None)
    result: dict[str, str] = cc.control("apps", {"name": "segmentsync"}).json()
    return result


def test_code_flow_with_basic_client_auth(cc: CC, app: dict[str, str]) -> None:
    code = _code(_approve(cc, _authorize_params(app)))
    response = _exchange(cc, app, code)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 86_400
    assert set(tokens["scope"].split()) == {"contact_data", "offline_access"}
    assert response.headers["cache-control"] == "no-store"
    assert cc.api("GET", "/contact_lists", token=tokens["access_token"]).status_code == 200
    # the code is single-use
    again = _exchange(cc, app, code)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_consent_page_names_the_app_and_lists_accounts(cc: CC, app: dict[str, str], sandbox: Sandbox) -> None:
    sandbox.create_cc_account("Second account")
    page = cc.http.get("/oauth2/default/v1/authorize", params=_authorize_params(app))
    assert "segmentsync" in page.text
    assert "Acme" in page.text
    assert "Second account" in page.text
    assert "<script" not in page.text
    assert "http" not in page.text.split("<body>")[1].split("<form")[0]


def test_pkce_public_client_needs_no_secret(cc: CC, app: dict[str, str]) -> None:
    verifier, challenge = _pkce()
    params = _authorize_params(app, code_challenge=challenge, code_challenge_method="S256")
    code = _code(_approve(cc, params))
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": app["client_id"],
    }
    wrong = cc.http.post("/oauth2/default/v1/token", data=form | {"code_verifier": "not-it"})
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    right = cc.http.post("/oauth2/default/v1/token", data=form | {"code_verifier": verifier})
    assert right.status_code == 200, right.text
    assert "refresh_token" in right.json()


def test_code_without_pkce_needs_the_client_secret(cc: CC, app: dict[str, str]) -> None:
    code = _code(_approve(cc, _authorize_params(app)))
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": app["client_id"],
    }
    response = cc.http.post("/oauth2/default/v1/token", data=form)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


def test_deny_redirects_with_access_denied(cc: CC, app: dict[str, str]) -> None:
    form = _authorize_params(app) | {"account_id": cc.account_id, "decision": "deny"}
    response = cc.http.post("/oauth2/default/v1/authorize", data=form)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["s-123"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "contact_data nonsense"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
        ({"code_challenge": "abc", "code_challenge_method": "plain"}, "invalid_request"),
    ],
)
def test_bad_authorize_requests_redirect_with_an_error(
    cc: CC, app: dict[str, str], change: dict[str, str], error: str
) -> None:
    response = cc.http.get("/oauth2/default/v1/authorize", params=_authorize_params(app, **change))
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == [error]


@pytest.mark.parametrize("change", [{"client_id": "unknown"}, {"redirect_uri": ""}])
def test_untrusted_client_or_redirect_gets_an_error_page(
    cc: CC, app: dict[str, str], change: dict[str, str]
) -> None:
    response = cc.http.get("/oauth2/default/v1/authorize", params=_authorize_params(app, **change))
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")


def test_registered_redirect_uris_are_enforced(cc: CC) -> None:
    app = cc.control("apps", {"name": "strict", "redirect_uris": ["http://127.0.0.1:9/ok"]}).json()
    response = cc.http.get("/oauth2/default/v1/authorize", params=_authorize_params(app))
    assert response.status_code == 400


def test_redirect_uri_must_match_at_exchange(cc: CC, app: dict[str, str]) -> None:
    code = _code(_approve(cc, _authorize_params(app)))
    response = _exchange(cc, app, code, redirect_uri="http://127.0.0.1:9/other")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_refresh_tokens_rotate(cc: CC) -> None:
    cc.limits(token_requests_per_second=None)
    first = _refresh(cc, cc.refresh_token)
    assert first["refresh_token"] != cc.refresh_token
    reused = cc.http.post(
        "/oauth2/default/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": cc.refresh_token},
        headers=_basic(cc.client_id, cc.client_secret),
    )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    second = _refresh(cc, first["refresh_token"])
    assert cc.api("GET", "/contact_lists", token=second["access_token"]).status_code == 200
    assert cc.api("GET", "/contact_lists", token=first["access_token"]).status_code == 200  # still valid


def test_a_new_grant_invalidates_the_previous_refresh_token(cc: CC, app: dict[str, str]) -> None:
    first = _exchange(cc, app, _code(_approve(cc, _authorize_params(app)))).json()
    _exchange(cc, app, _code(_approve(cc, _authorize_params(app))))
    response = cc.http.post(
        "/oauth2/default/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        headers=_basic(app["client_id"], app["client_secret"]),
    )
    assert response.json()["error"] == "invalid_grant"


def test_no_refresh_token_without_offline_access(cc: CC, app: dict[str, str]) -> None:
    code = _code(_approve(cc, _authorize_params(app, scope="contact_data")))
    tokens = _exchange(cc, app, code).json()
    assert "refresh_token" not in tokens
    assert tokens["scope"] == "contact_data"


def test_token_without_contact_data_scope_is_forbidden(cc: CC, app: dict[str, str]) -> None:
    code = _code(_approve(cc, _authorize_params(app, scope="account_read")))
    tokens = _exchange(cc, app, code).json()
    response = cc.api("GET", "/contact_lists", token=tokens["access_token"])
    assert response.status_code == 403
    assert error_keys(response) == ["forbidden"]


@pytest.mark.parametrize(
    ("form", "auth", "status", "error"),
    [
        ({"grant_type": "password"}, "good", 400, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "redirect_uri": REDIRECT}, "good", 400, "invalid_request"),
        ({"grant_type": "refresh_token"}, "good", 400, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "made-up"}, "good", 400, "invalid_grant"),
        ({"grant_type": "refresh_token", "refresh_token": "x"}, "bad secret", 401, "invalid_client"),
        ({"grant_type": "refresh_token", "refresh_token": "x"}, "unknown client", 401, "invalid_client"),
    ],
)
def test_token_endpoint_errors(cc: CC, form: dict[str, str], auth: str, status: int, error: str) -> None:
    cc.limits(token_requests_per_second=None)
    secret = "wrong" if auth == "bad secret" else cc.client_secret
    client_id = "00000000-0000-0000-0000-000000000000" if auth == "unknown client" else cc.client_id
    response = cc.http.post("/oauth2/default/v1/token", data=form, headers=_basic(client_id, secret))
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]


def test_token_endpoint_wants_a_form(cc: CC) -> None:
    response = cc.http.post(
        "/oauth2/default/v1/token",
        json={"grant_type": "refresh_token"},
        headers=_basic(cc.client_id, cc.client_secret),
    )
    assert response.status_code == 400
    assert response.json()["errorCode"] == "E0000021"  # Okta's answer


def test_token_endpoint_has_its_own_rate_limit(cc: CC) -> None:
    assert cc.limits()["limits"]["token_requests_per_second"] == 1
    cc.limits(token_requests_per_second=0.01)  # one now, the next in 100 s: no race with the clock
    first = _refresh(cc, cc.refresh_token)
    response = cc.http.post(
        "/oauth2/default/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        headers=_basic(cc.client_id, cc.client_secret),
    )
    assert response.status_code == 429
    assert response.json()["errorCode"] == "E0000047"
    assert cc.stats()["limited"]["token_throttled"] == 1


def test_approving_with_no_account_creates_one(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.constant_contact_url) as http:
        app = http.post("/_sandbox/apps", json={}).json()
        params = {
            "client_id": app["client_id"],
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": "contact_data offline_access",
            "state": "s-123",
        }
        page = http.get("/oauth2/default/v1/authorize", params=params)
        assert 'name="account_name"' in page.text
        response = http.post(
            "/oauth2/default/v1/authorize", data=params | {"decision": "approve", "account_name": "Fresh"}
        )
        assert response.status_code == 302
        assert [a["name"] for a in http.get("/_sandbox/accounts").json()["accounts"]] == ["Fresh"]


def test_the_account_summary_needs_account_read_and_tells_who_owns_the_account(cc: CC) -> None:
    summary = cc.api("GET", "/account/summary")
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert body["organization_name"] == "Acme"  # the account's name unless one was given
    assert body["contact_email"] == f"owner-{body['encoded_account_id']}@example.com"
    assert cc.api("GET", "/account/summary", params={"extra_fields": "logo"}).status_code == 400

    made = cc.control(
        "accounts", {"name": "Shop", "organization_name": "Shop Ltd", "scopes": ["contact_data"]}
    )
    assert made.status_code == 201, made.text
    refused = cc.api("GET", "/account/summary", token=made.json()["access_token"])
    assert (refused.status_code, error_keys(refused)) == (403, ["forbidden"])
    assert "account_read" in refused.text
    assert cc.api("GET", "/contact_lists", token=made.json()["access_token"]).status_code == 200
    wrong = cc.control("accounts", {"organization_name": 7, "scopes": ["everything"]})
    assert (wrong.status_code, wrong.json()["error"]) == (400, "organization_name must be a string")
