"""OAuth 2 with both platforms: authorize URLs, code exchange, token refresh.

Used by the connections service for the connect flow, and by the destinations to refresh.
Everything returns a ``TokenSet`` (``expires_at`` computed from ``expires_in``); a refusal by the
token endpoint (``invalid_grant``, ``invalid_client`` …) raises ``ConfigError`` with its message.

Campaign Monitor (``oauth_url`` default ``https://api.createsend.com/oauth``)::

    cm = CampaignMonitorOAuth(oauth_url, transport=None)
    cm.authorize_url(client_id, redirect_uri, scope, state) -> str   # scope: "ImportSubscribers,ManageLists" or a sequence
    cm.exchange_code(client_id, client_secret, redirect_uri, code) -> TokenSet
    cm.refresh(refresh_token) -> TokenSet

Constant Contact, with PKCE (``oauth_url`` default ``https://authz.constantcontact.com/oauth2/default/v1``)::

    verifier, challenge = ConstantContactOAuth.new_pkce()
    cc = ConstantContactOAuth(oauth_url, transport=None)
    cc.authorize_url(client_id, redirect_uri, state, challenge, scopes=("account_read", "contact_data", "offline_access")) -> str
    cc.exchange_code(client_id, client_secret, code, redirect_uri, verifier) -> TokenSet  # secret may be None (public client)
    cc.refresh(client_id, client_secret, refresh_token) -> TokenSet  # the old refresh token dies

Both are context managers (``close()`` releases their HTTP pool).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from segmentsync.destinations.api_client import ApiClient, json_of, new_http_client
from segmentsync.destinations.base import TokenSet
from segmentsync.destinations.policy import OAUTH, Tuning
from segmentsync.destinations.ratelimit import Clock, Sleep, TokenBucket
from segmentsync.errors import ConfigError
from segmentsync.settings import PRODUCTION_URLS

CAMPAIGN_MONITOR_SCOPES = ("ImportSubscribers", "ManageLists")
CONSTANT_CONTACT_SCOPES = ("account_read", "contact_data", "offline_access")  # account_read: its name


class _HeaderAuth:
    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def headers(self) -> tuple[dict[str, str], str]:
        return self._headers, ""

    def refresh(self, stale: str) -> bool:
        return False


class _TokenEndpoint:
    title = "OAuth"
    default_expires_in = 3600

    def __init__(
        self,
        oauth_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        tuning: Tuning | None = None,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.oauth_url = oauth_url.rstrip("/")
        self._tuning = tuning or Tuning()
        self._clock = clock
        self._http = new_http_client(transport, timeout=self._tuning.timeout, connections=2)
        # Constant Contact allows 1 token request per second per application; harmless for CM.
        self._bucket = TokenBucket(1.0, clock=clock, sleep=sleep)

    def _post_form(self, path: str, form: dict[str, str], headers: dict[str, str] | None = None) -> TokenSet:
        client = ApiClient(
            platform=OAUTH,
            title=self.title,
            base_url=self.oauth_url,
            http=self._http,
            auth=_HeaderAuth(headers or {}),
            limiter=self._bucket,
            tuning=self._tuning,
            clock=self._clock,
        )
        body = json_of(client.request("POST", path, data=form, headers={"Accept": "application/json"}))
        return self._token_set(body, form.get("refresh_token"))

    def _token_set(self, body: Any, old_refresh_token: str | None) -> TokenSet:
        if not isinstance(body, dict) or "error" in body or "access_token" not in body:
            error = body.get("error", "no access token") if isinstance(body, dict) else "unexpected answer"
            description = body.get("error_description", "") if isinstance(body, dict) else ""
            raise ConfigError(
                "%(platform)s: the token endpoint refused: %(error)s",
                params={
                    "platform": self.title,
                    "error": " ".join(str(part) for part in (error, description) if part),
                },
            )
        refresh_token = body.get("refresh_token") or old_refresh_token
        if not refresh_token:
            raise ConfigError(
                "%(platform)s: no refresh token was granted (is offline access allowed?)",
                params={"platform": self.title},
            )
        expires_in = float(body.get("expires_in") or self.default_expires_in)
        expires_at = datetime.fromtimestamp(self._clock(), UTC) + timedelta(seconds=expires_in)
        return TokenSet(access_token=body["access_token"], refresh_token=refresh_token, expires_at=expires_at)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> _TokenEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CampaignMonitorOAuth(_TokenEndpoint):
    title = "Campaign Monitor OAuth"
    default_expires_in = 1_209_600  # 14 days

    def __init__(self, oauth_url: str = PRODUCTION_URLS["campaign_monitor_oauth"], **kwargs: Any) -> None:
        super().__init__(oauth_url, **kwargs)

    def authorize_url(self, client_id: str, redirect_uri: str, scope: str | Sequence[str], state: str) -> str:
        scopes = scope if isinstance(scope, str) else ",".join(scope)
        query = {"client_id": client_id, "redirect_uri": redirect_uri, "scope": scopes, "state": state}
        return f"{self.oauth_url}?{urlencode(query)}"

    def exchange_code(self, client_id: str, client_secret: str, redirect_uri: str, code: str) -> TokenSet:
        form = {
            "grant_type": "authorization_code",
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uri": redirect_uri,
            "code": code,
        }
        return self._post_form("/token", form)

    def refresh(self, refresh_token: str) -> TokenSet:
        return self._post_form("/token", {"grant_type": "refresh_token", "refresh_token": refresh_token})


class ConstantContactOAuth(_TokenEndpoint):
    title = "Constant Contact OAuth"
    default_expires_in = 86_400  # 24 hours

    def __init__(self, oauth_url: str = PRODUCTION_URLS["constant_contact_oauth"], **kwargs: Any) -> None:
        super().__init__(oauth_url, **kwargs)

    @staticmethod
    def new_pkce() -> tuple[str, str]:
        """(code_verifier, code_challenge) for S256 (RFC 7636)."""
        verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-]
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def authorize_url(
        self,
        client_id: str,
        redirect_uri: str,
        state: str,
        challenge: str,
        scopes: Sequence[str] = CONSTANT_CONTACT_SCOPES,
    ) -> str:
        query = {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.oauth_url}/authorize?{urlencode(query)}"

    def exchange_code(
        self, client_id: str, client_secret: str | None, code: str, redirect_uri: str, verifier: str
    ) -> TokenSet:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        return self._post_form("/token", *self._client_auth(form, client_id, client_secret))

    def refresh(self, client_id: str, client_secret: str | None, refresh_token: str) -> TokenSet:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._post_form("/token", *self._client_auth(form, client_id, client_secret))

    @staticmethod
    def _client_auth(
        form: dict[str, str], client_id: str, client_secret: str | None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Confidential clients authenticate with HTTP Basic; public (PKCE) ones name themselves."""
        if not client_secret:
            return {**form, "client_id": client_id}, {}
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        return form, {"Authorization": f"Basic {basic}"}
