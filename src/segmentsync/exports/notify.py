"""Tell admins about runs that failed permanently: an in-app notice and an optional webhook.

The webhook (``SEGMENTSYNC_NOTIFICATION_WEBHOOK_URL``) receives a JSON POST signed with
HMAC-SHA256 of the body under ``SEGMENTSYNC_NOTIFICATION_WEBHOOK_SECRET``, in the header
``X-Segmentsync-Signature: sha256=<hex>``. It is best effort: a failing webhook is logged and
never changes the run.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import httpx
import orjson
from sqlalchemy.orm import Session

from segmentsync.auth.models import Notification
from segmentsync.exports.models import Run
from segmentsync.settings import Settings

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Segmentsync-Signature"


def run_failed(*, session: Session, run_id: int, message: str) -> dict[str, Any]:
    """Add the in-app notice; returns the webhook payload to post after the commit."""
    run = session.get(Run, run_id)
    export_name = run.export_name if run else "?"
    text = f"Run #{run_id} of export “{export_name}” failed: {message}"
    session.add(
        Notification(kind="run_failed", message=text, run_id=run_id, export_id=run.export_id if run else None)
    )
    return {"event": "run.failed", "run_id": run_id, "export": export_name, "message": message}


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_webhook(
    settings: Settings, payload: dict[str, Any], *, transport: httpx.BaseTransport | None = None
) -> bool:
    """POST the payload to the configured webhook; True if it answered 2xx."""
    if not settings.notification_webhook_url:
        return False
    body = orjson.dumps(payload)
    headers = {"Content-Type": "application/json"}
    if settings.notification_webhook_secret is not None:
        headers[SIGNATURE_HEADER] = sign(body, settings.notification_webhook_secret.get_secret_value())
    try:
        with httpx.Client(timeout=10, transport=transport) as client:
            response = client.post(settings.notification_webhook_url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        log.warning("notification webhook failed: %s", exc.__class__.__name__)
        return False
    if response.is_success:
        return True
    log.warning("notification webhook answered HTTP %s", response.status_code)
    return False
