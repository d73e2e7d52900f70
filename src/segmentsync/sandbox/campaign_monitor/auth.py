"""Who is calling: HTTP Basic with an API key, or an OAuth 2 Bearer token, and what it may touch."""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field
from typing import Final

from segmentsync.sandbox.campaign_monitor import errors
from segmentsync.sandbox.campaign_monitor.errors import ApiError
from segmentsync.sandbox.campaign_monitor.store import Store

SCOPES: Final = (
    "ViewReports",
    "ManageLists",
    "CreateCampaigns",
    "ImportSubscribers",
    "SendCampaigns",
    "ViewSubscribersInReports",
    "ManageTemplates",
    "AdministerPersons",
    "AdministerAccount",
    "ViewTransactional",
    "SendTransactional",
    "Automation",
)
SCOPE_LOOKUP: Final = {scope.lower(): scope for scope in SCOPES}
CODE_SECONDS: Final = 600  # an authorization code must be exchanged within this time


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``None`` means "all": every client / every permission."""

    identity: str  # what the request rate limit is counted against
    client_ids: frozenset[str] | None
    scopes: frozenset[str] | None

    def sees(self, client_id: str) -> bool:
        return self.client_ids is None or client_id in self.client_ids

    def may(self, needed: frozenset[str] | None) -> bool:
        return needed is None or self.scopes is None or not self.scopes.isdisjoint(needed)


@dataclass(slots=True)
class OAuthApp:
    client_id: str
    client_secret: str
    name: str
    redirect_uri: str | None  # when registered, redirect URIs must start with it


@dataclass(slots=True)
class Grant:
    """What the user approved on the authorize page; the code is exchanged once."""

    app_id: str
    client_ids: frozenset[str] | None
    scopes: frozenset[str]
    redirect_uri: str
    expires_at: float


@dataclass(slots=True)
class Token:
    access_token: str
    refresh_token: str
    app_id: str
    client_ids: frozenset[str] | None
    scopes: frozenset[str]
    expires_at: float
    revoked: bool = False


class OAuthError(Exception):
    """An OAuth 2 error answer: ``{"error": ..., "error_description": ...}``.

    Sent with HTTP 200: the platform's status is not documented; its official clients look for
    ``error`` in a 2xx answer (the Python client's own test serves this body with 200), and a 4xx
    makes createsend-python raise ``BadRequest``, whose ``str()`` fails on a body without Code.
    """

    def __init__(self, error: str, description: str, status: int = 200) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


@dataclass
class OAuth:
    """Registered applications, outstanding codes and issued tokens."""

    apps: dict[str, OAuthApp] = field(default_factory=dict)
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)  # by access token
    refresh_tokens: dict[str, Token] = field(default_factory=dict)

    def register(self, name: str, redirect_uri: str | None) -> OAuthApp:
        app = OAuthApp(
            str(secrets.randbelow(9_000_000) + 1_000_000), secrets.token_urlsafe(32), name, redirect_uri
        )
        self.apps[app.client_id] = app
        return app

    def grant(self, grant: Grant) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = grant
        return code

    def exchange(self, form: dict[str, str], *, now: float, lifetime: int) -> Token:
        app = self.apps.get(form.get("client_id", ""))
        if app is None or not secrets.compare_digest(app.client_secret, form.get("client_secret", "")):
            raise OAuthError("invalid_client", "Specified client_id or client_secret was invalid")
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or grant.app_id != app.client_id or grant.expires_at < now:
            raise OAuthError("invalid_grant", "Specified code was invalid or expired")
        if form.get("redirect_uri", "") != grant.redirect_uri:
            raise OAuthError(
                "invalid_grant", "Specified redirect_uri does not match the authorization request"
            )
        return self._issue(grant.app_id, grant.client_ids, grant.scopes, now=now, lifetime=lifetime)

    def refresh(self, form: dict[str, str], *, now: float, lifetime: int) -> Token:
        """A new access token and a new refresh token; the used refresh token stops working."""
        old = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
        if old is None or old.revoked:
            raise OAuthError("invalid_grant", "Specified refresh_token was invalid or expired")
        return self._issue(old.app_id, old.client_ids, old.scopes, now=now, lifetime=lifetime)

    def _issue(
        self,
        app_id: str,
        client_ids: frozenset[str] | None,
        scopes: frozenset[str],
        *,
        now: float,
        lifetime: int,
    ) -> Token:
        token = Token(
            access_token=secrets.token_urlsafe(32),
            refresh_token=secrets.token_urlsafe(32),
            app_id=app_id,
            client_ids=client_ids,
            scopes=scopes,
            expires_at=now + lifetime,
        )
        self.tokens[token.access_token] = token
        self.refresh_tokens[token.refresh_token] = token
        return token

    def select(self, access_token: str | None) -> list[Token]:
        """The token named, or every token when none is named."""
        if access_token is None:
            return list(self.tokens.values())
        token = self.tokens.get(access_token)
        return [token] if token else []


def authenticate(
    header: str | None, *, store: Store, oauth: OAuth, now: float, unknown_key_code: int
) -> Principal:
    """The caller behind an ``Authorization`` header, or the 401 CM answers."""
    scheme, _, credentials = (header or "").partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        return _basic(credentials.strip(), store, unknown_key_code)
    if scheme == "bearer":
        return _bearer(credentials.strip(), oauth, now)
    raise errors.unauthorized(errors.NO_BASIC_AUTH)


def _basic(credentials: str, store: Store, unknown_key_code: int) -> Principal:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise errors.unauthorized(errors.NO_BASIC_AUTH) from None
    api_key = decoded.partition(":")[0]
    client_id = store.api_keys.get(api_key)
    if client_id is None:
        error = (
            errors.INVALID_API_KEY if unknown_key_code == errors.INVALID_API_KEY[0] else errors.NO_BASIC_AUTH
        )
        raise errors.unauthorized(error)
    return Principal(f"key:{api_key}", frozenset((client_id,)), None)


def _bearer(access_token: str, oauth: OAuth, now: float) -> Principal:
    token = oauth.tokens.get(access_token)
    if token is None:
        raise errors.unauthorized(errors.INVALID_TOKEN)
    if token.revoked:
        raise errors.unauthorized(errors.REVOKED_TOKEN)
    if token.expires_at <= now:
        raise errors.unauthorized(errors.EXPIRED_TOKEN)
    return Principal(f"token:{access_token}", token.client_ids, token.scopes)


def parse_scopes(raw: str) -> frozenset[str] | None:
    """``"ManageLists,ImportSubscribers"`` -> the scopes, or None if one is unknown or none given."""
    names = [part.strip() for part in raw.replace(" ", ",").split(",") if part.strip()]
    scopes = [SCOPE_LOOKUP.get(name.lower()) for name in names]
    if not scopes or None in scopes:
        return None
    return frozenset(scope for scope in scopes if scope)


def check_ownership(principal: Principal, client_id: str, error: tuple[int, str]) -> None:
    if not principal.sees(client_id):
        raise ApiError(401, *error)
