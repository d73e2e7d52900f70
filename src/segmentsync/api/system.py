"""System > Schedule and Status: the system refresh schedule, recent refreshes and runs, notifications."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from segmentsync.api.deps import RuntimeDep, SessionDep, client_ip, require
from segmentsync.api.pagination import Page, PageDep, paginate
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action
from segmentsync.scheduling import schedule, scheduler
from segmentsync.scheduling import status as system_status
from segmentsync.scheduling.models import SystemRefresh
from segmentsync.scheduling.schedule import ScheduleIn, ScheduleOut
from segmentsync.scheduling.status import NotificationOut, RefreshOut, StatusOut

router = APIRouter(prefix="/system", tags=["system"])
ScheduleViewer = Annotated[User, Depends(require(Action.SCHEDULE_VIEW))]
ScheduleEditor = Annotated[User, Depends(require(Action.SCHEDULE_EDIT))]
StatusViewer = Annotated[User, Depends(require(Action.SYSTEM_STATUS))]
NoticeReader = Annotated[User, Depends(require(Action.NOTIFICATIONS_VIEW))]
STATUS_WINDOW = timedelta(hours=24)


class Marked(BaseModel):
    marked: int


@router.get("/schedule", summary="The system refresh schedule and its next refreshes")
def get_schedule(session: SessionDep, runtime: RuntimeDep, actor: ScheduleViewer) -> ScheduleOut:
    return schedule.get(session=session, actor=actor, now=runtime.clock())


@router.put("/schedule", summary="Set the system refresh schedule (off; daily or weekly; ≤ 4 times a day)")
def put_schedule(
    body: ScheduleIn, session: SessionDep, runtime: RuntimeDep, actor: ScheduleEditor, request: Request
) -> ScheduleOut:
    return schedule.update(
        session=session, data=body, actor=actor, now=runtime.clock(), ip=client_ip(request)
    )


@router.post("/refreshes", status_code=201, summary="Run a system refresh now (segments, then their exports)")
def refresh_now(session: SessionDep, runtime: RuntimeDep, actor: ScheduleEditor) -> RefreshOut:
    session.commit()  # the refresh works in short transactions of its own
    now = runtime.clock()
    refresh_id = scheduler.system_refresh(runtime, now, now=now, trigger="on_demand")
    with runtime.readers() as fresh:
        refresh = fresh.get(SystemRefresh, refresh_id) if refresh_id is not None else None
        if refresh is None:  # the same instant was claimed elsewhere: show that refresh
            refresh = fresh.scalar(
                system_status.refresh_query().where(SystemRefresh.scheduled_for == now).limit(1)
            )
        assert refresh is not None  # inserted by us or by whoever claimed this instant
        return system_status.refresh_out(refresh)


@router.get("/refreshes", summary="System refreshes, newest first")
def list_refreshes(session: SessionDep, actor: StatusViewer, page: PageDep) -> Page[RefreshOut]:
    found, total = paginate(session, system_status.refresh_query(), page)
    return Page(
        items=[system_status.refresh_out(r) for r in found], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/status", summary="Recent refreshes and runs, runs of the last 24 h by status")
def get_status(session: SessionDep, runtime: RuntimeDep, actor: StatusViewer) -> StatusOut:
    now = runtime.clock()
    return system_status.status(session=session, actor=actor, since=now - STATUS_WINDOW, now=now)


@router.get("/notifications", summary="Notifications for admins (e.g. runs that failed permanently)")
def list_notifications(
    session: SessionDep, actor: NoticeReader, page: PageDep, unread: bool | None = None
) -> Page[NotificationOut]:
    found, total = paginate(session, system_status.notification_query(actor=actor, unread=unread), page)
    return Page(
        items=[system_status.notification_out(n) for n in found],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/notifications/read-all", summary="Mark every notification read")
def read_all(session: SessionDep, runtime: RuntimeDep, actor: NoticeReader) -> Marked:
    return Marked(marked=system_status.mark_all_read(session=session, actor=actor, now=runtime.clock()))


@router.post("/notifications/{notification_id}/read", summary="Mark one notification read (for every admin)")
def read_one(
    notification_id: int, session: SessionDep, runtime: RuntimeDep, actor: NoticeReader
) -> NotificationOut:
    notice = system_status.mark_read(
        session=session, notification_id=notification_id, actor=actor, now=runtime.clock()
    )
    return system_status.notification_out(notice)
