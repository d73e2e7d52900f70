"""The OAuth 2 connect flow: start (authorize URL, ``state``, PKCE) and complete (the callback).

:func:`start` checks the draft (consent, unique name), stores an :class:`OAuthState` for ten
minutes (the PKCE verifier encrypted) and returns the platform's authorize URL. The platform sends
the admin's browser back to :data:`CALLBACK_PATH`; :func:`complete` accepts the ``state`` only if
it exists, is unexpired and belongs to the same user, consumes it (single use, committed before the
code is exchanged), exchanges the code, verifies the tokens and saves the connection.

The web wizard starts with ``hold=True``: the verified credentials are then kept (encrypted, for
ten minutes, as a *pending* :class:`OAuthState`) instead of saved, and the connection is made only
when the admin presses *Save* (:func:`save_pending`). An abandoned wizard leaves nothing behind:
the pending row expires and is deleted with the other expired states.
"""

from __future__ import annotations

import secrets
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.auth import audit
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action, check
from segmentsync.connections import access, service
from segmentsync.connections.models import Connection, ConnectionType, OAuthState
from segmentsync.connections.schemas import AuthMethod, ConnectionDraft, OAuthStart, OAuthStarted
from segmentsync.db import transaction
from segmentsync.destinations.base import AccountInfo, TokenSet
from segmentsync.destinations.oauth import CAMPAIGN_MONITOR_SCOPES, CampaignMonitorOAuth, ConstantContactOAuth
from segmentsync.errors import ConfigError, Forbidden, Invalid, NotFound
from segmentsync.runtime import Runtime

CALLBACK_PATH = "/api/v1/connections/oauth/callback"
STATE_LIFETIME = timedelta(minutes=10)
# What a re-authorization keeps of the connection's settings: its client and URL overrides.
CARRIED_SETTINGS = ("client_id", "api_url", "oauth_url")


def redirect_uri(runtime: Runtime) -> str:
    """The redirect URI to register with each platform's OAuth application."""
    return runtime.settings.public_base_url + CALLBACK_PATH


def _app(runtime: Runtime, type: ConnectionType) -> tuple[str, str | None]:
    client_id, secret = access.oauth_app(runtime.settings, type)
    if not client_id:
        prefix = f"SEGMENTSYNC_{type.value.upper()}"
        raise ConfigError(
            "no OAuth application is configured for %(type)s: register one with the platform (redirect URI %(value)s) and set %(prefix)s_CLIENT_ID and %(prefix)s_CLIENT_SECRET",
            params={"type": type.value, "value": redirect_uri(runtime), "prefix": prefix},
            code="oauth_not_configured",
        )
    if type is ConnectionType.CAMPAIGN_MONITOR and not secret:
        raise ConfigError(
            "Campaign Monitor's OAuth code exchange needs SEGMENTSYNC_CAMPAIGN_MONITOR_CLIENT_SECRET",
            code="oauth_not_configured",
        )
    return client_id, secret


# ---------------------------------------------------------------- start


def start(
    *, session: Session, runtime: Runtime, draft: OAuthStart, actor: User, hold: bool = False
) -> OAuthStarted:
    """Begin authorizing a new connection; the draft is saved only when the platform says yes.

    ``hold``: keep the verified credentials pending until :func:`save_pending` (the web wizard).
    """
    service.check_draft(session=session, draft=draft, actor=actor)
    carried = {"client_id": draft.client_id} if draft.client_id else {}
    payload = {
        "draft": draft.model_dump(mode="json"),
        "consent_at": runtime.clock().isoformat(),
        "settings": carried,
        "hold": hold,
    }
    return _begin(session=session, runtime=runtime, type=draft.type, payload=payload, actor=actor)


def start_reauthentication(
    *, session: Session, runtime: Runtime, connection: Connection, actor: User
) -> OAuthStarted:
    """Begin re-authorizing an existing connection (its exports keep working with the old tokens)."""
    check(actor, Action.CONNECTIONS_MANAGE)
    carried = {key: connection.settings[key] for key in CARRIED_SETTINGS if connection.settings.get(key)}
    payload = {"connection_id": connection.id, "settings": carried}
    return _begin(session=session, runtime=runtime, type=connection.type, payload=payload, actor=actor)


def _begin(
    *, session: Session, runtime: Runtime, type: ConnectionType, payload: dict[str, Any], actor: User
) -> OAuthStarted:
    client_id, _ = _app(runtime, type)
    now = runtime.clock()
    session.execute(sa.delete(OAuthState).where(OAuthState.expires_at < now))  # housekeeping
    state = secrets.token_urlsafe(32)
    uri = redirect_uri(runtime)
    _, oauth_url = access.platform_urls(runtime.settings, type, payload["settings"])
    verifier: str | None = None
    if type is ConnectionType.CAMPAIGN_MONITOR:
        with closing(CampaignMonitorOAuth(oauth_url)) as cm:
            url = cm.authorize_url(client_id, uri, CAMPAIGN_MONITOR_SCOPES, state)
    else:
        verifier, challenge = ConstantContactOAuth.new_pkce()
        with closing(ConstantContactOAuth(oauth_url)) as cc:
            url = cc.authorize_url(client_id, uri, state, challenge)
    session.add(
        OAuthState(
            state=state,
            user_id=actor.id,
            connection_type=type,
            payload=payload,
            code_verifier=runtime.vault.encrypt({"code_verifier": verifier}) if verifier else None,
            created_at=now,
            expires_at=now + STATE_LIFETIME,
        )
    )
    session.flush()
    return OAuthStarted(authorize_url=url, state=state, redirect_uri=uri, expires_at=now + STATE_LIFETIME)


# ---------------------------------------------------------------- complete


def complete(
    *,
    runtime: Runtime,
    actor_id: int,
    state: str,
    code: str | None,
    error: str | None = None,
    error_description: str | None = None,
    ip: str | None = None,
) -> Authorized:
    """The callback: check and consume ``state``, exchange the code, verify, save (or hold).

    Manages its own transactions (do not call it inside one): the state is consumed for good
    even when the exchange fails, and nothing is locked while the platform is called.
    """
    with transaction(runtime.sessions) as session:
        row, refusal = _consume(session, state=state, actor_id=actor_id, now=runtime.clock())
        type, payload = row.connection_type, dict(row.payload)
        if payload.get("pending"):  # a held authorization is finished by save_pending, not here
            raise Forbidden("this authorization is unknown or was already used; start connecting again",
                            code="oauth_state")  # fmt: skip
        verifier = runtime.vault.decrypt(row.code_verifier)["code_verifier"] if row.code_verifier else None
    if refusal is not None:  # raised after the commit: an expired state is gone for good
        raise refusal
    if error:
        described = f" ({error_description})" if error_description else ""
        raise ConfigError(
            "the platform did not authorize the connection: %(error)s%(described)s",
            params={"error": error, "described": described},
            code="oauth_denied",
        )
    if not code:
        raise Invalid("the platform sent no authorization code", field="code")
    client_id, _ = _app(runtime, type)
    settings = {**payload["settings"], "auth_method": AuthMethod.OAUTH.value, "oauth_client_id": client_id}
    tokens = _exchange(runtime, type, settings, code, verifier)
    verified = access.verify(
        runtime=runtime,
        type=type,
        settings=settings,
        secrets={"access_token": tokens.access_token, "refresh_token": tokens.refresh_token},
        expires_at=tokens.expires_at,
    )
    if payload.get("hold") and "draft" in payload:
        return Authorized(pending=_hold(runtime, type, payload, verified, actor_id))
    return Authorized(connection_id=_save(runtime, payload, verified, actor_id, ip))


@dataclass(frozen=True)
class Authorized:
    """What the callback did: saved a connection (its id) or holds it for the wizard's *Save*."""

    connection_id: int | None = None
    pending: str | None = None


@dataclass(frozen=True)
class Pending:
    """A new connection the platform authorized, waiting for *Save* in the wizard."""

    token: str
    draft: ConnectionDraft
    account_name: str
    account_id: str


def _hold(runtime: Runtime, type: ConnectionType, payload: dict[str, Any], verified: access.Verified,
          actor_id: int) -> str:  # fmt: skip
    """Keep verified credentials (encrypted) for ten minutes under a new token; nothing is saved."""
    token = secrets.token_urlsafe(32)
    now = runtime.clock()
    held = {
        "settings": verified.settings, "secrets": verified.secrets,
        "token_expires_at": verified.token_expires_at.isoformat() if verified.token_expires_at else None,
        "account": {"account_id": verified.account.account_id, "name": verified.account.name},
    }  # fmt: skip
    pending = {**payload, "pending": True, "account_name": verified.account.name,
               "account_id": verified.account.account_id}  # fmt: skip
    with transaction(runtime.sessions) as session:
        session.add(
            OAuthState(state=token, user_id=actor_id, connection_type=type, payload=pending,
                       code_verifier=runtime.vault.encrypt(held), created_at=now, expires_at=now + STATE_LIFETIME)
        )  # fmt: skip
    return token


def _pending_row(session: Session, token: str, actor: User, now: datetime) -> OAuthState:
    row = session.get(OAuthState, token) if token else None
    if row is None or not row.payload.get("pending") or row.user_id != actor.id or row.expires_at <= now:
        raise NotFound("this authorization is unknown or expired (10 minutes); start connecting again",
                       code="oauth_state")  # fmt: skip
    return row


def pending(*, session: Session, runtime: Runtime, token: str, actor: User) -> Pending:
    """The held authorization ``token`` of ``actor`` (NotFound when unknown, expired or another's)."""
    check(actor, Action.CONNECTIONS_MANAGE)
    row = _pending_row(session, token, actor, runtime.clock())
    draft = ConnectionDraft.model_validate(row.payload["draft"])
    return Pending(
        token, draft, str(row.payload.get("account_name", "")), str(row.payload.get("account_id", ""))
    )


def save_pending(*, session: Session, runtime: Runtime, token: str, actor: User, add_me: bool,
                 ip: str | None = None) -> Connection:  # fmt: skip
    """*Save* in the wizard: the held authorization becomes the connection (the token is spent)."""
    check(actor, Action.CONNECTIONS_MANAGE)
    row = _pending_row(session, token, actor, runtime.clock())
    payload = dict(row.payload)
    held = runtime.vault.decrypt(row.code_verifier or "")
    session.delete(row)
    expires = held.get("token_expires_at")
    verified = access.Verified(
        settings=held["settings"], secrets=held["secrets"],
        token_expires_at=datetime.fromisoformat(expires) if expires else None,
        account=AccountInfo(account_id=held["account"]["account_id"], name=held["account"]["name"]),
    )  # fmt: skip
    draft = ConnectionDraft.model_validate({**payload["draft"], "add_me_as_export_user": add_me})
    return service.save_new(
        session=session, runtime=runtime, draft=draft, verified=verified, actor=actor,
        consent_at=datetime.fromisoformat(payload["consent_at"]), ip=ip,
    )  # fmt: skip


def discard_pending(*, session: Session, runtime: Runtime, token: str, actor: User) -> None:
    """*Cancel* in the wizard: forget the held authorization."""
    check(actor, Action.CONNECTIONS_MANAGE)
    session.delete(_pending_row(session, token, actor, runtime.clock()))


def _save(
    runtime: Runtime, payload: dict[str, Any], verified: access.Verified, actor_id: int, ip: str | None
) -> int:
    with transaction(runtime.sessions) as session:
        actor = session.get(User, actor_id)
        if actor is None:
            raise Forbidden("the user who started the authorization is gone")
        if "connection_id" in payload:
            return _reauthenticate(session, runtime, payload["connection_id"], verified, actor, ip)
        connection = service.save_new(
            session=session, runtime=runtime, draft=ConnectionDraft.model_validate(payload["draft"]),
            verified=verified, actor=actor, consent_at=datetime.fromisoformat(payload["consent_at"]), ip=ip,
        )  # fmt: skip
        return connection.id


def _consume(
    session: Session, *, state: str, actor_id: int, now: datetime
) -> tuple[OAuthState, Forbidden | None]:
    """The state row, deleted (a state works once), and why it cannot be used, if so."""
    row = session.get(OAuthState, state) if state else None
    if row is None:
        raise Forbidden(
            "this authorization is unknown or was already used; start connecting again", code="oauth_state"
        )
    if row.user_id != actor_id:  # not consumed: it is not this user's to spend
        raise Forbidden("this authorization was started by another user", code="oauth_state")
    deleted = session.execute(sa.delete(OAuthState).where(OAuthState.state == state))
    if deleted.rowcount != 1:  # type: ignore[attr-defined]  # a CursorResult for DML
        raise Forbidden("this authorization was already used; start connecting again", code="oauth_state")
    if row.expires_at <= now:
        return row, Forbidden(
            "this authorization expired (10 minutes); start connecting again", code="oauth_state_expired"
        )
    return row, None


def _exchange(
    runtime: Runtime, type: ConnectionType, settings: dict[str, Any], code: str, verifier: str | None
) -> TokenSet:
    client_id, secret = _app(runtime, type)
    uri = redirect_uri(runtime)
    _, oauth_url = access.platform_urls(runtime.settings, type, settings)
    if type is ConnectionType.CAMPAIGN_MONITOR:
        with closing(CampaignMonitorOAuth(oauth_url)) as cm:
            return cm.exchange_code(client_id, secret or "", uri, code)
    if verifier is None:
        raise Forbidden("this authorization has no PKCE verifier; start connecting again", code="oauth_state")
    with closing(ConstantContactOAuth(oauth_url)) as cc:
        return cc.exchange_code(client_id, secret, code, uri, verifier)


def _reauthenticate(
    session: Session,
    runtime: Runtime,
    connection_id: int,
    verified: access.Verified,
    actor: User,
    ip: str | None,
) -> int:
    connection = session.get(Connection, connection_id)
    if connection is None:
        raise NotFound(
            "connection %(connection_id)s was removed while it was being re-authenticated",
            params={"connection_id": connection_id},
        )
    before = service.snapshot(connection)
    service.reauthenticated(session=session, runtime=runtime, connection=connection, verified=verified)
    session.flush()
    audit.record(
        session, actor=actor, action="connection.reauthenticate", object_type=service.OBJECT,
        object_id=connection.id, object_label=connection.name, before=before,
        after=service.snapshot(connection), ip=ip,
    )  # fmt: skip
    return connection.id
