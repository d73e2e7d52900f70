"""OAuth helpers: the URLs the platforms expect, PKCE, and the token endpoint's answers."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from segmentsync.destinations.oauth import CampaignMonitorOAuth, ConstantContactOAuth
from segmentsync.errors import ConfigError

from .fakes import FAST, FakeTime, Script, json_response


def test_campaign_monitor_authorize_url_is_the_official_clients_one() -> None:
    url = CampaignMonitorOAuth().authorize_url(
        "8998879", "https://example.com/auth", ["ViewReports", "CreateCampaigns", "SendCampaigns"], "89879287"
    )
    assert url == (
        "https://api.createsend.com/oauth?client_id=8998879&redirect_uri=https%3A%2F%2Fexample.com%2Fauth"
        "&scope=ViewReports%2CCreateCampaigns%2CSendCampaigns&state=89879287"
    )


def test_constant_contact_authorize_url_asks_for_pkce_and_offline_access() -> None:
    verifier, challenge = ConstantContactOAuth.new_pkce()
    url = ConstantContactOAuth().authorize_url("app-id", "https://example.com/cb", "st4te", challenge)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}"
        == "https://authz.constantcontact.com/oauth2/default/v1/authorize"
    )
    assert query == {
        "client_id": ["app-id"],
        "redirect_uri": ["https://example.com/cb"],
        "response_type": ["code"],
        "scope": ["account_read contact_data offline_access"],
        "state": ["st4te"],
        "code_challenge": [challenge],
        "code_challenge_method": ["S256"],
    }
    assert 43 <= len(verifier) <= 128
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == digest


def test_a_code_exchange_sends_the_form_and_gives_a_token_set() -> None:
    time = FakeTime()
    script = Script(
        json_response(
            200, {"access_token": "A", "expires_in": 86400, "refresh_token": "R", "token_type": "Bearer"}
        )
    )
    oauth = ConstantContactOAuth(
        "https://cc.test/oauth2/default/v1", transport=script.transport, clock=time.clock, tuning=FAST
    )
    tokens = oauth.exchange_code("app", "secret", "the-code", "https://example.com/cb", "the-verifier")
    assert (tokens.access_token, tokens.refresh_token) == ("A", "R")
    assert tokens.expires_at == datetime.fromtimestamp(time.now, UTC) + timedelta(days=1)
    [request] = script.requests
    assert request.url == "https://cc.test/oauth2/default/v1/token"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"app:secret").decode()
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["authorization_code"],
        "code": ["the-code"],
        "redirect_uri": ["https://example.com/cb"],
        "code_verifier": ["the-verifier"],
    }


def test_a_public_client_names_itself_instead_of_basic_auth() -> None:
    script = Script(json_response(200, {"access_token": "A", "refresh_token": "R2"}))
    oauth = ConstantContactOAuth("https://cc.test/oauth2/default/v1", transport=script.transport, tuning=FAST)
    assert oauth.refresh("app", None, "R1").refresh_token == "R2"
    [request] = script.requests
    assert "authorization" not in request.headers
    assert parse_qs(request.content.decode())["client_id"] == ["app"]


@pytest.mark.parametrize(
    "answer",
    [
        json_response(
            400, {"error": "invalid_grant", "error_description": "Specified code was invalid or expired"}
        ),
        json_response(
            200, {"error": "invalid_grant", "error_description": "Specified code was invalid or expired"}
        ),
    ],
)
def test_a_refused_exchange_is_a_config_error_with_the_reason(answer: httpx.Response) -> None:
    oauth = CampaignMonitorOAuth("https://cm.test/oauth", transport=Script(answer).transport, tuning=FAST)
    with pytest.raises(ConfigError, match="Specified code was invalid or expired"):
        oauth.exchange_code("id", "secret", "https://example.com/cb", "code")
