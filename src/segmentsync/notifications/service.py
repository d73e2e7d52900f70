"""Webhook endpoints as admins manage them: create, change, remove, rotate the secret, test, redeliver.

A secret is ``whsec_`` + base64 of 32 random bytes (the Standard Webhooks format), shown once when
made and encrypted at rest with the vault. Rotating keeps the previous secret for 24 hours: each
delivery meanwhile carries a signature by both (``webhook-signature: v1,<new> v1,<old>``), so a
receiver can switch secrets without losing a message.
"""

from __future__ import annotations

import base64
import secrets as random
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.auth import audit
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action, check
from segmentsync.connections.vault import Vault
from segmentsync.errors import Conflict, Invalid, NotFound
from segmentsync.notifications import addresses, events
from segmentsync.notifications.models import Channel, Delivery, DeliveryStatus, WebhookEndpoint
from segmentsync.settings import Settings

OBJECT = "webhook"
PREFIX = "whsec_"
PREVIOUS_KEPT = timedelta(hours=24)


def new_secret() -> str:
    return PREFIX + base64.b64encode(random.token_bytes(32)).decode()


def signing_secrets(vault: Vault, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets each delivery is signed with: the current one, and the previous one for 24 hours."""
    stored = vault.decrypt(endpoint.secrets)
    found = [stored["current"]]
    until = stored.get("previous_until")
    if stored.get("previous") and until and datetime.fromisoformat(until) > now:
        found.append(stored["previous"])
    return found


def _events(values: list[str]) -> list[str]:
    if not values:
        raise Invalid('choose at least one event (or "*" for all)', field="events")
    unknown = [v for v in values if v != events.ALL and v not in events.EVENT_TYPES]
    if unknown:
        raise Invalid(
            'unknown event %(unknown)s; one of: %(names)s, or "*"',
            params={"unknown": repr(unknown[0]), "names": ", ".join(events.EVENT_TYPES)},
            field="events",
        )
    return [events.ALL] if events.ALL in values else sorted(set(values), key=events.EVENT_TYPES.index)


def _audited(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {"url": endpoint.url, "events": endpoint.events, "description": endpoint.description,
            "enabled": endpoint.enabled}  # fmt: skip


def _url(session: Session, settings: Settings, url: str, *, other_than: int | None = None) -> str:
    url = addresses.check_url(url, allow_private=settings.webhooks_allow_private)
    taken = session.scalar(sa.select(WebhookEndpoint.id).where(WebhookEndpoint.url == url))
    if taken is not None and taken != other_than:
        raise Conflict(
            "an endpoint with this URL exists already (#%(taken)s)",
            params={"taken": taken},
            code="webhook_exists",
            field="url",
        )
    return url


def create(
    *,
    session: Session,
    settings: Settings,
    vault: Vault,
    actor: User | None,
    url: str,
    event_types: list[str],
    description: str = "",
    ip: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its secret (shown this once)."""
    if actor is not None:
        check(actor, Action.WEBHOOKS_MANAGE)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        url=_url(session, settings, url),
        events=_events(event_types),
        description=description.strip()[:500],
        secrets=vault.encrypt({"current": secret}),
        enabled=True,
    )
    session.add(endpoint)
    session.flush()
    audit.record(session, actor=actor, action="webhook.create", object_type=OBJECT, object_id=endpoint.id,
                 object_label=endpoint.url, after=_audited(endpoint), ip=ip)  # fmt: skip
    return endpoint, secret


def get(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(
            "no webhook endpoint #%(endpoint_id)s",
            params={"endpoint_id": endpoint_id},
            code="webhook_not_found",
        )
    return endpoint


def listing() -> sa.Select[WebhookEndpoint]:
    return sa.select(WebhookEndpoint).order_by(WebhookEndpoint.id)


def listing_for(*, session: Session, actor: User) -> list[WebhookEndpoint]:
    check(actor, Action.WEBHOOKS_MANAGE)
    return list(session.scalars(listing()))


def get_for(*, session: Session, actor: User, endpoint_id: int) -> WebhookEndpoint:
    check(actor, Action.WEBHOOKS_MANAGE)
    return get(session, endpoint_id)


def update(
    *,
    session: Session,
    settings: Settings,
    actor: User,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
    ip: str | None = None,
) -> WebhookEndpoint:
    check(actor, Action.WEBHOOKS_MANAGE)
    before = _audited(endpoint)
    if url is not None:
        endpoint.url = _url(session, settings, url, other_than=endpoint.id)
    if event_types is not None:
        endpoint.events = _events(event_types)
    if description is not None:
        endpoint.description = description.strip()[:500]
    if enabled is True and not endpoint.enabled:
        endpoint.enabled, endpoint.disabled_reason, endpoint.failing_since = True, None, None
    elif enabled is False and endpoint.enabled:
        disable(session, endpoint, "disabled by an admin")
    session.flush()
    audit.record(session, actor=actor, action="webhook.update", object_type=OBJECT, object_id=endpoint.id,
                 object_label=endpoint.url, before=before, after=_audited(endpoint), ip=ip)  # fmt: skip
    return endpoint


def disable(session: Session, endpoint: WebhookEndpoint, reason: str) -> None:
    """Stop sending to the endpoint: its waiting deliveries fail (they can be redelivered later)."""
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    session.execute(
        sa.update(Delivery)
        .where(Delivery.endpoint_id == endpoint.id, Delivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.FAILED, error=f"not sent: the endpoint was disabled ({reason})")
        .execution_options(synchronize_session=False)
    )


def remove(*, session: Session, actor: User, endpoint: WebhookEndpoint, ip: str | None = None) -> None:
    check(actor, Action.WEBHOOKS_MANAGE)
    audit.record(session, actor=actor, action="webhook.remove", object_type=OBJECT, object_id=endpoint.id,
                 object_label=endpoint.url, before=_audited(endpoint), ip=ip)  # fmt: skip
    session.execute(sa.delete(Delivery).where(Delivery.endpoint_id == endpoint.id))
    session.delete(endpoint)
    session.flush()


def rotate(
    *,
    session: Session,
    vault: Vault,
    actor: User,
    endpoint: WebhookEndpoint,
    now: datetime,
    ip: str | None = None,
) -> str:
    """A new secret (returned, shown once); the previous one still signs for 24 hours."""
    check(actor, Action.WEBHOOKS_MANAGE)
    current = vault.decrypt(endpoint.secrets)["current"]
    secret = new_secret()
    endpoint.secrets = vault.encrypt(
        {"current": secret, "previous": current, "previous_until": (now + PREVIOUS_KEPT).isoformat()}
    )
    audit.record(session, actor=actor, action="webhook.rotate_secret", object_type=OBJECT,
                 object_id=endpoint.id, object_label=endpoint.url, ip=ip)  # fmt: skip
    return secret


def send_test(*, session: Session, actor: User, endpoint: WebhookEndpoint, now: datetime) -> Delivery:
    """Queue a ``webhook.test`` event to this endpoint only (even a disabled one: to check a fix)."""
    check(actor, Action.WEBHOOKS_MANAGE)
    data = {"message": "A test event from segmentsync: this endpoint is reachable and its signature verifies.",
            "endpoint": {"id": endpoint.id}, "sent_by": actor.email}  # fmt: skip
    body = orjson.dumps(events.payload(events.WEBHOOK_TEST, data, now)).decode()
    delivery = events.queue(session, Delivery(message_id=events.new_message_id(), channel=Channel.WEBHOOK,
                                              endpoint_id=endpoint.id, event_type=events.WEBHOOK_TEST, body=body))  # fmt: skip
    session.flush()
    return delivery


def deliveries(endpoint_id: int, status: DeliveryStatus | None = None) -> sa.Select[Delivery]:
    query = sa.select(Delivery).where(Delivery.endpoint_id == endpoint_id).order_by(Delivery.id.desc())
    return query if status is None else query.where(Delivery.status == status)


def redeliver(
    *, session: Session, actor: User, endpoint: WebhookEndpoint, delivery_id: int, now: datetime
) -> Delivery:
    """Send a delivered or failed message again, with the same ``webhook-id`` (receivers dedupe on it)."""
    check(actor, Action.WEBHOOKS_MANAGE)
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise NotFound(
            "no delivery #%(delivery_id)s of webhook endpoint #%(endpoint_id)s",
            params={"delivery_id": delivery_id, "endpoint_id": endpoint.id},
            code="delivery_not_found",
        )
    if delivery.status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING):
        raise Conflict(
            "delivery #%(delivery_id)s is still being sent (%(status)s)",
            params={"delivery_id": delivery_id, "status": delivery.status.value},
            code="delivery_active",
        )
    if not endpoint.enabled:
        raise Conflict("the endpoint is disabled; enable it first", code="webhook_disabled")
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now
    delivery.error = None
    events.queue(session, delivery)
    audit.record(session, actor=actor, action="webhook.redeliver", object_type=OBJECT, object_id=endpoint.id,
                 object_label=endpoint.url, after={"delivery_id": delivery.id})  # fmt: skip
    session.flush()
    return delivery


LEGACY_DESCRIPTION = (
    "made from SEGMENTSYNC_NOTIFICATION_WEBHOOK_URL (run.failed only); see docs/operations.md"
)


def adopt_legacy(session: Session, settings: Settings, vault: Vault) -> WebhookEndpoint | None:
    """The old one-URL setting as an endpoint subscribed to ``run.failed`` (once; idempotent).

    Its secret is ``whsec_`` + base64 of the old secret's bytes, so a receiver keeps its key and
    only changes how it checks (Standard Webhooks headers instead of ``X-Segmentsync-Signature``).
    """
    url = settings.notification_webhook_url
    if not url:
        return None
    if session.scalar(sa.select(WebhookEndpoint.id).where(WebhookEndpoint.url == url.strip())) is not None:
        return None
    old = settings.notification_webhook_secret
    secret = PREFIX + base64.b64encode(old.get_secret_value().encode()).decode() if old else new_secret()
    endpoint = WebhookEndpoint(url=url.strip(), events=[events.RUN_FAILED], description=LEGACY_DESCRIPTION,
                               secrets=vault.encrypt({"current": secret}), enabled=True)  # fmt: skip
    session.add(endpoint)
    session.flush()
    audit.record(session, actor=None, action="webhook.create", object_type=OBJECT, object_id=endpoint.id,
                 object_label=endpoint.url, after=_audited(endpoint))  # fmt: skip
    return endpoint
