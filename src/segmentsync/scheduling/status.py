"""System > Status: recent system refreshes and runs; admins' notifications (read / unread)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from segmentsync.auth import audit
from segmentsync.auth.models import Notification, User
from segmentsync.auth.policy import Action, allowed, check
from segmentsync.errors import NotFound
from segmentsync.exports import views
from segmentsync.exports.models import ACTIVE_STATUSES, Run, RunStatus
from segmentsync.exports.schemas import RunOut
from segmentsync.scheduling.models import SystemRefresh

RECENT = 10


class RefreshOut(BaseModel):
    id: int
    scheduled_for: datetime
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    details: dict[str, Any] | None
    error: str | None


class NotificationOut(BaseModel):
    id: int
    created_at: datetime
    kind: str
    message: str
    run_id: int | None
    export_id: int | None
    read_at: datetime | None


class StatusOut(BaseModel):
    refreshes: list[RefreshOut] = Field(description="the latest system refreshes, newest first")
    active_runs: list[RunOut] = Field(description="runs queued, running or waiting to retry")
    recent_runs: list[RunOut] = Field(description="the latest runs, newest first")
    runs_by_status: dict[str, int] = Field(description="runs created since `since`, by status")
    unread_notifications: int | None = Field(description="admins only; None for other roles")


def refresh_out(refresh: SystemRefresh) -> RefreshOut:
    return RefreshOut(
        id=refresh.id,
        scheduled_for=refresh.scheduled_for,
        trigger=refresh.trigger,
        status=refresh.status,
        started_at=refresh.started_at,
        finished_at=refresh.finished_at,
        details=refresh.details,
        error=refresh.error,
    )


def notification_out(notice: Notification) -> NotificationOut:
    return NotificationOut(
        id=notice.id,
        created_at=notice.created_at,
        kind=notice.kind,
        message=notice.message,
        run_id=notice.run_id,
        export_id=notice.export_id,
        read_at=notice.read_at,
    )


def refresh_query() -> sa.Select[SystemRefresh]:
    return sa.select(SystemRefresh).order_by(SystemRefresh.scheduled_for.desc(), SystemRefresh.id.desc())


def status(*, session: Session, actor: User, since: datetime, now: datetime) -> StatusOut:
    """Runs by status count the runs created since ``since``."""
    check(actor, Action.SYSTEM_STATUS)
    refreshes = session.scalars(refresh_query().limit(RECENT))
    active = list(session.scalars(sa.select(Run).where(Run.status.in_(ACTIVE_STATUSES)).order_by(Run.id)))
    recent = list(session.scalars(sa.select(Run).order_by(Run.id.desc()).limit(RECENT)))
    counts = session.execute(
        sa.select(Run.status, sa.func.count()).where(Run.created_at >= since).group_by(Run.status)
    ).all()
    unread = None
    if allowed(actor.role, Action.NOTIFICATIONS_VIEW):
        unread = session.scalar(sa.select(sa.func.count()).where(Notification.read_at.is_(None))) or 0
    return StatusOut(
        refreshes=[refresh_out(r) for r in refreshes],
        active_runs=views.run_outs(session, active, now=now),
        recent_runs=views.run_outs(session, recent, now=now),
        runs_by_status={RunStatus(s).value: int(n) for s, n in counts},
        unread_notifications=unread,
    )


def notification_query(*, actor: User, unread: bool | None = None) -> sa.Select[Notification]:
    check(actor, Action.NOTIFICATIONS_VIEW)
    query = sa.select(Notification).order_by(Notification.id.desc())
    if unread is True:
        query = query.where(Notification.read_at.is_(None))
    elif unread is False:
        query = query.where(Notification.read_at.is_not(None))
    return query


def mark_read(*, session: Session, notification_id: int, actor: User, now: datetime) -> Notification:
    """Notifications are shared by the admins: one admin marking one read marks it for all."""
    check(actor, Action.NOTIFICATIONS_VIEW)
    notice = session.get(Notification, notification_id)
    if notice is None:
        raise NotFound(
            "there is no notification with id %(notification_id)s",
            params={"notification_id": notification_id},
        )
    if notice.read_at is None:
        notice.read_at = now
        audit.record(
            session, actor=actor, action="notification.read", object_type="notification",
            object_id=notice.id, object_label=notice.kind,
        )  # fmt: skip
    return notice


def mark_all_read(*, session: Session, actor: User, now: datetime) -> int:
    check(actor, Action.NOTIFICATIONS_VIEW)
    result = session.execute(
        sa.update(Notification).where(Notification.read_at.is_(None)).values(read_at=now)
    )
    count = int(result.rowcount)  # type: ignore[attr-defined]  # CursorResult of an UPDATE
    if count:
        audit.record(
            session, actor=actor, action="notification.read_all", object_type="notification",
            after={"marked": count},
        )  # fmt: skip
    return count
