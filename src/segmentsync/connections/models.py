"""Connections to destination accounts, and pending OAuth authorizations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from segmentsync.db import Base, UTCDateTime, str_enum, utcnow


class ConnectionType(StrEnum):
    CAMPAIGN_MONITOR = "campaign_monitor"
    CONSTANT_CONTACT = "constant_contact"


class ConnectionStatus(StrEnum):
    OK = "ok"
    NEEDS_ATTENTION = "needs_attention"  # auth failed or the export user lost the right to export


class Connection(Base):
    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)  # the display name
    type: Mapped[ConnectionType] = mapped_column(str_enum(ConnectionType))
    shared_with_contributors: Mapped[bool] = mapped_column(default=False)
    consent_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    export_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    # Non-secret settings: auth method, client id, account name, API base URL override.
    settings: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    # Fernet token of a JSON object of secrets (API key, OAuth tokens, client secret).
    secrets: Mapped[str] = mapped_column(sa.Text)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[ConnectionStatus] = mapped_column(str_enum(ConnectionStatus), default=ConnectionStatus.OK)
    status_message: Mapped[str | None] = mapped_column(sa.Text)
    # Bumped on every secrets write: a token refresh commits only if nobody else refreshed first.
    secrets_version: Mapped[int] = mapped_column(default=1)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OAuthState(Base):
    """An OAuth authorization in flight: the ``state`` we sent and what to do on return."""

    __tablename__ = "oauth_states"

    state: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    connection_type: Mapped[ConnectionType] = mapped_column(str_enum(ConnectionType))
    # The draft (new connection fields) or {"connection_id": n} for re-authentication.
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    code_verifier: Mapped[str | None] = mapped_column(sa.Text)  # PKCE, encrypted like secrets
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
