"""Lifecycle events into the outbox: one delivery per subscribed endpoint, in the caller's transaction.

An event is written with the change it describes (the run's end, its start, a connection that
needs attention), so it is never lost and never sent for a change that was rolled back. The
payload is ``{"type", "timestamp", "data"}``; ``data`` holds ids, names, counts and the error —
never a secret and never a member's data. Links are kept as paths and made absolute with
``SEGMENTSYNC_BASE_URL`` when sent (:func:`body_to_send`).
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.connections.models import Connection
from segmentsync.db import utcnow
from segmentsync.exports.models import Export, Run, RunStatus
from segmentsync.notifications.models import Channel, Delivery, DeliveryStatus, WebhookEndpoint

RUN_STARTED = "run.started"
RUN_SUCCEEDED = "run.succeeded"
RUN_SUCCEEDED_WITH_REJECTIONS = "run.succeeded_with_rejections"
RUN_FAILED = "run.failed"
RUN_AWAITING_CONFIRMATION = "run.awaiting_confirmation"
RUN_CANCELLED = "run.cancelled"
CONNECTION_NEEDS_ATTENTION = "connection.needs_attention"
ALERT_TRIGGERED = "alert.triggered"
ALERT_RESOLVED = "alert.resolved"
WEBHOOK_TEST = "webhook.test"  # sent only by "send test event", whatever the endpoint subscribes to
EVENT_TYPES = (
    RUN_STARTED,
    RUN_SUCCEEDED,
    RUN_SUCCEEDED_WITH_REJECTIONS,
    RUN_FAILED,
    RUN_AWAITING_CONFIRMATION,
    RUN_CANCELLED,
    CONNECTION_NEEDS_ATTENTION,
    ALERT_TRIGGERED,
    ALERT_RESOLVED,
)
ALL = "*"
RUN_EVENT_OF_STATUS = {
    RunStatus.SUCCEEDED: RUN_SUCCEEDED,
    RunStatus.SUCCEEDED_WITH_REJECTIONS: RUN_SUCCEEDED_WITH_REJECTIONS,
    RunStatus.FAILED: RUN_FAILED,
    RunStatus.FAILED_RETRY: RUN_FAILED,
    RunStatus.AWAITING_CONFIRMATION: RUN_AWAITING_CONFIRMATION,
    RunStatus.CANCELLED: RUN_CANCELLED,
}
COUNTS = ("profiles", "invalid", "new", "updated", "unchanged", "removed", "rejected", "skipped")


class Doorbell:
    """Rung when a transaction that wrote deliveries commits: this process's sender looks at once."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def ring(self) -> None:
        self.event.set()


WRITTEN = Doorbell()
_KEY = "segmentsync.deliveries_written"


@sa.event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_KEY, False):
        WRITTEN.ring()


@sa.event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def payload(event_type: str, data: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    stamp = (at or utcnow()).isoformat().replace("+00:00", "Z")
    return {"type": event_type, "timestamp": stamp, "data": data}


def subscribers(session: Session, event_type: str) -> list[WebhookEndpoint]:
    endpoints = session.scalars(sa.select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True)))
    return [e for e in endpoints if ALL in e.events or event_type in e.events]


def emit(session: Session, event_type: str, data: dict[str, Any], *, at: datetime | None = None) -> int:
    """Write the event for every enabled endpoint subscribed to it; returns how many."""
    endpoints = subscribers(session, event_type)
    if not endpoints:
        return 0
    body = orjson.dumps(payload(event_type, data, at)).decode()
    message_id = new_message_id()
    for endpoint in endpoints:
        queue(session, Delivery(message_id=message_id, channel=Channel.WEBHOOK, endpoint_id=endpoint.id,
                                event_type=event_type, body=body))  # fmt: skip
    return len(endpoints)


def queue(session: Session, delivery: Delivery) -> Delivery:
    """Add a delivery, due now; the sender of this process is woken when the transaction commits."""
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = delivery.next_attempt_at or utcnow()
    delivery.attempts = delivery.attempts or 0
    session.add(delivery)
    session.info[_KEY] = True
    return delivery


def body_to_send(body: str, base_url: str) -> bytes:
    """The stored payload with its links made absolute (the same bytes on every attempt)."""
    document = orjson.loads(body)
    links = document.get("data", {}).get("links") if isinstance(document, dict) else None
    if isinstance(links, dict):
        for key, value in links.items():
            if isinstance(value, str) and value.startswith("/"):
                links[key] = base_url + value
    return orjson.dumps(document)


def _when(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def run_data(session: Session, run: Run) -> dict[str, Any]:
    """What a run event says: ids, names, counts, the error, links — no member, no secret."""
    export = session.get(Export, run.export_id) if run.export_id else None
    connection = session.get(Connection, export.connection_id) if export and export.connection_id else None
    error = {"code": run.error_code, "message": run.error} if run.error or run.error_code else None
    return {
        "run": {
            "id": run.id,
            "status": run.status.value,
            "trigger": run.trigger.value,
            "dry_run": run.dry_run,
            "attempt": run.attempt,
            "created_at": _when(run.created_at),
            "started_at": _when(run.started_at),
            "finished_at": _when(run.finished_at),
            "counts": {name: int(getattr(run, name) or 0) for name in COUNTS},
            "error": error,
            "will_retry": run.status is RunStatus.FAILED_RETRY,
            "next_attempt_at": _when(run.next_attempt_at),
        },
        "export": {"id": run.export_id, "name": run.export_name},
        "platform": connection.type.value if connection else None,
        "connection": {"id": connection.id, "name": connection.name} if connection else None,
        "links": {"ui": f"/runs/{run.id}", "api": f"/api/v1/runs/{run.id}"},
    }


def run_event(session: Session, run: Run) -> int:
    """The event of the run's current status (started, or how it ended)."""
    event_type = RUN_STARTED if run.status is RunStatus.RUNNING else RUN_EVENT_OF_STATUS.get(run.status)
    if event_type is None:
        return 0
    return emit(session, event_type, run_data(session, run))


def connection_data(connection: Connection, message: str) -> dict[str, Any]:
    return {
        "connection": {"id": connection.id, "name": connection.name},
        "platform": connection.type.value,
        "message": message,
        "links": {"ui": f"/connections/{connection.id}", "api": f"/api/v1/connections/{connection.id}"},
    }
