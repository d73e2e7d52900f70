"""Webhook endpoints, the outbox of deliveries (webhook and e-mail), alert rules and recipients."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from segmentsync.db import Base, UTCDateTime, str_enum, utcnow


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(2000), unique=True)
    description: Mapped[str] = mapped_column(sa.String(500), default="")
    events: Mapped[list[str]] = mapped_column(sa.JSON, default=list)  # event types; ["*"]: all
    # The vault's encryption of {"current": "whsec_…", "previous": "whsec_…"|None, "previous_until": iso}
    secrets: Mapped[str] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(sa.Text)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first failure since a success
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at (the first attempt, or a retry)
    SENDING = "sending"  # claimed by a process until claim_expires_at
    DELIVERED = "delivered"
    FAILED = "failed"  # retries exhausted, or the endpoint was disabled


class Delivery(Base):
    """The outbox: one message to one webhook endpoint or one e-mail, written with its event."""

    __tablename__ = "deliveries"
    __table_args__ = (sa.Index("ix_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(sa.String(40))  # webhook-id: the same on every attempt
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    endpoint_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    recipients: Mapped[list[str] | None] = mapped_column(sa.JSON)  # e-mail only
    event_type: Mapped[str] = mapped_column(sa.String(60))
    body: Mapped[str] = mapped_column(sa.Text)  # the JSON payload (webhook) or {"subject", "text"} (e-mail)
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(100))
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_code: Mapped[int | None] = mapped_column()
    latency_ms: Mapped[int | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertKind(StrEnum):
    FAILED = "failed"  # the last run failed permanently
    REJECTED = "rejected"  # rejected rows over `threshold` % of the rows sent
    STALE = "stale"  # no successful run for `threshold` hours while the export is scheduled
    SLOW = "slow"  # a run took (or is taking) longer than `threshold` minutes


class AlertRule(Base):
    """One rule of one export; a missing row means the rule's default (every rule is on by default)."""

    __tablename__ = "alert_rules"
    __table_args__ = (sa.UniqueConstraint("export_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    export_id: Mapped[int] = mapped_column(sa.ForeignKey("exports.id", ondelete="CASCADE"))
    kind: Mapped[AlertKind] = mapped_column(str_enum(AlertKind))
    enabled: Mapped[bool] = mapped_column(default=True)
    threshold: Mapped[float | None] = mapped_column(sa.Float)
    holding: Mapped[bool] = mapped_column(default=False)  # triggered and not yet resolved
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when it last triggered or resolved
    detail: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # what it last said


class AlertRecipient(Base):
    """An address that receives an export's alert e-mails (beside the admins)."""

    __tablename__ = "alert_recipients"

    export_id: Mapped[int] = mapped_column(sa.ForeignKey("exports.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), primary_key=True)
