"""What the API and the CLI take and give for webhook endpoints, deliveries and alert rules."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from segmentsync.notifications.models import AlertKind, Channel, DeliveryStatus


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="http(s) URL that receives the events (public addresses only, by default)")
    events: list[str] = Field(description='event types (e.g. "run.failed"), or ["*"] for all')
    description: str = ""


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    enabled: bool | None = Field(default=None, description="false stops sending; true sends again")


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    description: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="whsec_…: the signing secret, shown this once")


class WebhookSecret(BaseModel):
    secret: str = Field(
        description="the new signing secret, shown this once (the previous one signs for 24 h more)"
    )


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    message_id: str = Field(description="the webhook-id header: the same on every attempt")
    channel: Channel
    event_type: str
    status: DeliveryStatus
    attempts: int
    response_code: int | None
    latency_ms: int | None
    error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class AlertRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: AlertKind
    enabled: bool | None = None
    threshold: float | None = Field(default=None, description="% (rejected), hours (stale), minutes (slow)")


class AlertsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[AlertRuleIn] = Field(default_factory=list, description="only the rules sent change")
    emails: list[str] | None = Field(
        default=None, description="alert addresses beside the admins (replaces them)"
    )


class AlertRuleOut(BaseModel):
    kind: AlertKind
    label: str
    enabled: bool
    threshold: float | None
    unit: str | None
    holding: bool = Field(description="triggered and not yet resolved")
    changed_at: datetime | None
    message: str | None


class AlertsOut(BaseModel):
    rules: list[AlertRuleOut]
    emails: list[str]
    email_configured: bool = Field(description="whether SEGMENTSYNC_SMTP_URL is set (else no e-mail is sent)")
