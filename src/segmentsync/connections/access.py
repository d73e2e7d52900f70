"""Credentials: split into settings and secrets, verified against the platform, kept in the vault.

The destination of a stored connection (with token refresh) is in
:mod:`segmentsync.connections.destination`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.connections.models import Connection, ConnectionType, OAuthState
from segmentsync.connections.schemas import ApiKeyAuth, AuthMethod, TokenAuth
from segmentsync.connections.vault import Vault
from segmentsync.destinations import LimitStore, create_destination
from segmentsync.destinations.base import AccountInfo, Credentials, TokenSet
from segmentsync.errors import ConfigError, Invalid
from segmentsync.logs import register_secret
from segmentsync.runtime import Runtime
from segmentsync.settings import Settings

SECRET_FIELDS = ("api_key", "access_token", "refresh_token", "oauth_client_secret")
AUTH_CODES = frozenset({"unauthorized", "tokens_not_saved"})  # destinations' codes for refused credentials
OAUTH_REFUSALS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client", "invalid_token"})
# Campaign Monitor answers 401 for a list the credentials cannot see (Code 101 Invalid ListID):
# a problem of the export's list, not of the connection's credentials.
LIST_REFUSALS = frozenset({"101"})


@dataclass(frozen=True)
class Verified:
    """Credentials the platform accepted, split into non-secret settings and secrets."""

    settings: dict[str, Any]
    secrets: dict[str, str]
    token_expires_at: datetime | None
    account: AccountInfo


# ---------------------------------------------------------------- URLs and OAuth applications


def platform_urls(settings: Settings, type: ConnectionType, overrides: dict[str, Any]) -> tuple[str, str]:
    """The API and OAuth base URLs of a connection: its own overrides, else the configured ones."""
    if type is ConnectionType.CAMPAIGN_MONITOR:
        api, oauth = settings.campaign_monitor_api_url, settings.campaign_monitor_oauth_url
    else:
        api, oauth = settings.constant_contact_api_url, settings.constant_contact_oauth_url
    return (overrides.get("api_url") or api).rstrip("/"), (overrides.get("oauth_url") or oauth).rstrip("/")


def limit_store(runtime: Runtime) -> LimitStore:
    """The platforms' per-application limits are shared by every process of this metadata store."""
    return LimitStore(runtime.engine, runtime.settings.constant_contact_daily_quota)


def oauth_app(settings: Settings, type: ConnectionType) -> tuple[str | None, str | None]:
    """The configured OAuth application (client id, secret) for a connection type."""
    if type is ConnectionType.CAMPAIGN_MONITOR:
        client_id, secret = settings.campaign_monitor_client_id, settings.campaign_monitor_client_secret
    else:
        client_id, secret = settings.constant_contact_client_id, settings.constant_contact_client_secret
    return client_id, secret.get_secret_value() if secret is not None else None


# ---------------------------------------------------------------- credentials


def split_auth(
    type: ConnectionType, auth: ApiKeyAuth | TokenAuth
) -> tuple[dict[str, Any], dict[str, str], datetime | None]:
    """Non-secret settings, secrets and token expiry of what an admin typed in."""
    if isinstance(auth, ApiKeyAuth):
        if type is not ConnectionType.CAMPAIGN_MONITOR:
            raise Invalid(
                "Constant Contact has no API keys: authenticate with OAuth 2",
                code="unsupported_auth",
                field="auth.method",
            )
        return (
            {"auth_method": AuthMethod.API_KEY.value, "client_id": auth.client_id},
            {"api_key": auth.api_key.get_secret_value()},
            None,
        )
    settings: dict[str, Any] = {"auth_method": AuthMethod.OAUTH.value}
    if auth.client_id:
        settings["client_id"] = auth.client_id
    if auth.oauth_client_id:
        settings["oauth_client_id"] = auth.oauth_client_id
    secrets = {
        "access_token": auth.access_token.get_secret_value(),
        "refresh_token": auth.refresh_token.get_secret_value(),
    }
    if auth.oauth_client_secret is not None:
        secrets["oauth_client_secret"] = auth.oauth_client_secret.get_secret_value()
    return settings, secrets, auth.expires_at


def to_credentials(
    settings: dict[str, Any], secrets: dict[str, str], expires_at: datetime | None
) -> Credentials:
    for value in secrets.values():  # from now on redacted from every log line, should one slip in
        register_secret(value)
    return Credentials(
        api_key=secrets.get("api_key"),
        client_id=settings.get("client_id"),
        access_token=secrets.get("access_token"),
        refresh_token=secrets.get("refresh_token"),
        expires_at=expires_at,
        oauth_client_id=settings.get("oauth_client_id"),
        oauth_client_secret=secrets.get("oauth_client_secret"),
    )


def with_app(credentials: Credentials, settings: Settings, type: ConnectionType) -> Credentials:
    """Fill in the configured OAuth application where the connection stores none of its own."""
    if credentials.api_key is not None:
        return credentials
    client_id, secret = oauth_app(settings, type)
    own_id = credentials.oauth_client_id
    return Credentials(
        api_key=None,
        client_id=credentials.client_id,
        access_token=credentials.access_token,
        refresh_token=credentials.refresh_token,
        expires_at=credentials.expires_at,
        oauth_client_id=own_id or client_id,
        oauth_client_secret=credentials.oauth_client_secret
        or (secret if own_id in (None, client_id) else None),
    )


def credentials_for(*, vault: Vault, connection: Connection) -> Credentials:
    """The decrypted credentials stored with a connection."""
    return to_credentials(connection.settings, vault.decrypt(connection.secrets), connection.token_expires_at)


def store(connection: Connection, verified: Verified, *, vault: Vault) -> None:
    """Put verified credentials on a (new or re-authenticated) connection, secrets encrypted."""
    connection.settings = {**verified.settings, "secrets_stored": sorted(verified.secrets)}
    connection.secrets = vault.encrypt(verified.secrets)
    connection.token_expires_at = verified.token_expires_at


# ---------------------------------------------------------------- verifying new credentials


def authenticate(
    *,
    runtime: Runtime,
    type: ConnectionType,
    auth: ApiKeyAuth | TokenAuth,
    api_url: str | None = None,
    oauth_url: str | None = None,
) -> Verified:
    """Verify what an admin typed in (API key or tokens) against the platform."""
    settings, secrets, expires_at = split_auth(type, auth)
    settings.update({key: url for key, url in (("api_url", api_url), ("oauth_url", oauth_url)) if url})
    return verify(runtime=runtime, type=type, settings=settings, secrets=secrets, expires_at=expires_at)


def verify(
    *,
    runtime: Runtime,
    type: ConnectionType,
    settings: dict[str, Any],
    secrets: dict[str, str],
    expires_at: datetime | None,
) -> Verified:
    """Check credentials that are not saved yet; the account they belong to is added to the settings.

    Tokens refreshed on the way (expired tokens given to a scripted setup) replace the given ones.
    """
    refreshed: list[TokenSet] = []
    credentials = with_app(to_credentials(settings, secrets, expires_at), runtime.settings, type)
    api_url, oauth_url = platform_urls(runtime.settings, type, settings)
    # Limits of this process only: the caller may hold a store transaction (on SQLite, the write
    # lock the shared limits would wait for), and it is one request.
    destination = create_destination(
        type, credentials=credentials, api_url=api_url, oauth_url=oauth_url, on_tokens=refreshed.append
    )
    try:
        account = destination.verify()
    except ConfigError as exc:
        raise ConfigError(
            "the credentials were not accepted: %(message)s", params={"message": exc.message}, code=exc.code, field=exc.field or "auth",
            details=exc.details,
        ) from exc  # fmt: skip
    finally:
        destination.close()
    if refreshed:
        latest = refreshed[-1]
        secrets = {**secrets, "access_token": latest.access_token, "refresh_token": latest.refresh_token}
        expires_at = latest.expires_at
    settings = {**settings, "account_id": account.account_id, "account_name": account.name}
    if type is ConnectionType.CAMPAIGN_MONITOR:
        settings["client_id"] = account.account_id  # the client the credentials work for
    return Verified(settings=settings, secrets=secrets, token_expires_at=expires_at, account=account)


def is_auth_failure(exc: ConfigError) -> bool:
    """Did the platform refuse the connection's credentials (rather than, say, a list ID)?"""
    if exc.details.get("platform_code") in LIST_REFUSALS:
        return False
    return exc.code in AUTH_CODES or exc.details.get("status") in (401, 403) or is_refresh_refusal(exc)


def is_refresh_refusal(exc: ConfigError) -> bool:
    """Did the token endpoint refuse a refresh (e.g. a refresh token another process spent)?"""
    return (
        exc.code == "tokens_not_saved"
        or exc.details.get("platform_code") in OAUTH_REFUSALS
        or "token endpoint refused" in exc.message
    )


# ---------------------------------------------------------------- stored connections


def rotate_all(*, session: Session, vault: Vault) -> int:
    """Re-encrypt every stored secret with the newest key (after adding it in front of the old)."""
    count = 0
    for connection_id, token, version in session.execute(
        sa.select(Connection.id, Connection.secrets, Connection.secrets_version)
    ):
        # Guarded like a token refresh: if one commits first, its secrets use the new key already.
        result = session.execute(
            sa.update(Connection)
            .where(Connection.id == connection_id, Connection.secrets_version == version)
            .values(secrets=vault.rotate(token))
            .execution_options(synchronize_session=False)
        )
        count += result.rowcount  # type: ignore[attr-defined]  # a CursorResult for DML
    for state, verifier in session.execute(
        sa.select(OAuthState.state, OAuthState.code_verifier).where(OAuthState.code_verifier.is_not(None))
    ):
        if verifier is None:  # filtered out above; this tells the type checker
            continue
        session.execute(
            sa.update(OAuthState)
            .where(OAuthState.state == state)
            .values(code_verifier=vault.rotate(verifier))
        )
        count += 1
    return count
