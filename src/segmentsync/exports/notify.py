"""In-app notices for admins (System > Status, ``/api/v1/system/notifications``): written here only.

Kinds: ``alert_triggered`` / ``alert_resolved`` (an export's alert rule started or stopped
holding, ``notifications.alerts``) and ``webhook_disabled`` (an endpoint kept failing,
``notifications.delivery``).

The one-URL ``run.failed`` webhook that lived here (``SEGMENTSYNC_NOTIFICATION_WEBHOOK_URL``,
``X-Segmentsync-Signature``) was replaced by webhook endpoints with Standard Webhooks signatures
(``segmentsync.notifications``); a process that finds the old variable set makes it an endpoint
subscribed to ``run.failed`` (docs/operations.md, "Webhooks, alerts and email").
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from segmentsync.auth.models import Notification


def notice(
    session: Session, *, kind: str, message: str, run_id: int | None = None, export_id: int | None = None
) -> Notification:
    notification = Notification(kind=kind, message=message, run_id=run_id, export_id=export_id)
    session.add(notification)
    return notification
