"""OAuth 2 as the platform's Okta server does it: applications, codes, rotating refresh tokens."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

import orjson

ISSUER = "https://identity.constantcontact.com/oauth2/aus1lm3ry9mF7x2Ja0h8"
AUDIENCE = "https://api.cc.email/v3"
SCOPES = frozenset(
    {
        "account_read",
        "account_update",
        "contact_data",
        "campaign_data",
        "offline_access",
        "billing_data",
        "openid",
        "profile",
    }
)
CODE_SECONDS = 300  # "auth code lifetime 5 min, single use"
REFRESH_IDLE_SECONDS = 180 * 86_400  # refresh tokens expire if unused for 180 days


class OAuthError(Exception):
    """A token-endpoint error: ``{"error", "error_description"}`` with its status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(slots=True)
class App:
    client_id: str
    client_secret: str
    name: str
    redirect_uris: tuple[str, ...] = ()  # empty: any redirect URI is accepted


@dataclass(slots=True, frozen=True)
class Grant:
    """Who granted what to which application."""

    account_id: str
    client_id: str
    scopes: frozenset[str]


@dataclass(slots=True)
class AccessToken:
    grant: Grant
    expires_at: float | None


@dataclass(slots=True)
class RefreshToken:
    grant: Grant
    last_used: float


@dataclass(slots=True)
class AuthCode:
    grant: Grant
    redirect_uri: str
    challenge: str | None
    expires_at: float


def new_app(name: str, redirect_uris: tuple[str, ...] = ()) -> App:
    return App(str(uuid.uuid4()), secrets.token_urlsafe(30), name, redirect_uris)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    return _b64(hashlib.sha256(verifier.encode()).digest())


class TokenStore:
    def __init__(self) -> None:
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}
        self.codes: dict[str, AuthCode] = {}
        self.current_refresh: dict[tuple[str, str], str] = {}  # (client, account) -> the valid one

    def issue(self, grant: Grant, lifetime: float | None) -> dict[str, object]:
        """A token response; a refresh token only with ``offline_access``, replacing the previous one."""
        now = time.time()
        expires_in = int(lifetime) if lifetime else 86_400
        token = _jwt(grant, now, expires_in)
        self.access[token] = AccessToken(grant, now + lifetime if lifetime else None)
        body: dict[str, object] = {
            "token_type": "Bearer",
            "expires_in": expires_in,
            "access_token": token,
            "scope": " ".join(sorted(grant.scopes)),
        }
        if "offline_access" in grant.scopes:
            key = (grant.client_id, grant.account_id)
            self.refresh.pop(self.current_refresh.get(key, ""), None)  # rotating: the old one dies
            refresh = secrets.token_urlsafe(32)
            self.refresh[refresh] = RefreshToken(grant, now)
            self.current_refresh[key] = refresh
            body["refresh_token"] = refresh
        return body

    def check(self, token: str) -> Grant | None:
        access = self.access.get(token)
        if access is None:
            return None
        if access.expires_at is not None and access.expires_at <= time.time():
            del self.access[token]
            return None
        return access.grant

    def new_code(self, grant: Grant, redirect_uri: str, challenge: str | None) -> str:
        code = secrets.token_urlsafe(32)
        self.codes[code] = AuthCode(grant, redirect_uri, challenge, time.time() + CODE_SECONDS)
        return code

    def redeem_code(self, app: App, authenticated: bool, form: dict[str, str]) -> Grant:
        code = self.codes.get(form.get("code", ""))
        if code is None or code.expires_at < time.time() or code.grant.client_id != app.client_id:
            raise OAuthError("invalid_grant", "The authorization code is invalid or has expired.")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError(
                "invalid_grant",
                "The 'redirect_uri' does not match the redirection URI used in the authorization request.",
            )
        verifier = form.get("code_verifier")
        if code.challenge is not None:
            if not verifier or s256(verifier) != code.challenge:
                raise OAuthError("invalid_grant", "PKCE verification failed.")
        elif not authenticated:
            raise OAuthError(
                "invalid_client",
                "Client authentication failed. Either the client or the client credentials are invalid.",
                401,
            )
        del self.codes[form["code"]]  # single use
        return code.grant

    def redeem_refresh(self, app: App, form: dict[str, str]) -> Grant:
        value = form.get("refresh_token", "")
        refresh = self.refresh.get(value)
        if refresh is None or refresh.grant.client_id != app.client_id:
            raise OAuthError("invalid_grant", "The refresh token is invalid or expired.")
        if refresh.last_used + REFRESH_IDLE_SECONDS < time.time():
            del self.refresh[value]
            raise OAuthError("invalid_grant", "The refresh token is invalid or expired.")
        grant = refresh.grant
        wanted = form.get("scope")
        if wanted:
            scopes = frozenset(wanted.split())
            if not scopes <= grant.scopes:
                raise OAuthError("invalid_scope", "The requested scope is invalid, unknown, or malformed.")
            grant = Grant(grant.account_id, grant.client_id, scopes | {"offline_access"})
        del self.refresh[value]
        return grant

    def expire(self, token: str | None) -> int:
        """End one access token (or all): the next use gets 401."""
        if token is None:
            count = len(self.access)
            self.access.clear()
            return count
        return 1 if self.access.pop(token, None) is not None else 0


def _jwt(grant: Grant, now: float, expires_in: int) -> str:
    """A JWT-shaped access token (clients may decode it; nobody can verify the signature)."""
    header = {"kid": "sandbox", "alg": "RS256"}
    claims = {
        "ver": 1,
        "jti": "AT." + secrets.token_urlsafe(32),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(now),
        "exp": int(now) + expires_in,
        "cid": grant.client_id,
        "uid": grant.account_id,
        "scp": sorted(grant.scopes),
        "auth_time": int(now),
        "sub": grant.account_id,
        "platform_user_id": grant.account_id,
    }
    return ".".join((_b64(orjson.dumps(header)), _b64(orjson.dumps(claims)), _b64(secrets.token_bytes(64))))
