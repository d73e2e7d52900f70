"""System > Schedule (the system refresh schedule) and System > Status (recent refreshes and runs)."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import available_timezones

import sqlalchemy as sa
from babel.dates import get_day_names
from fastapi import Response

from segmentsync.auth.models import Notification
from segmentsync.auth.policy import Action
from segmentsync.connections.models import Connection, ConnectionStatus
from segmentsync.db import id_from_text
from segmentsync.errors import SegmentSyncError
from segmentsync.exports.models import ACTIVE_STATUSES, Run
from segmentsync.scheduling import schedule, scheduler
from segmentsync.scheduling.models import SystemRefresh
from segmentsync.web import charts
from segmentsync.web.forms import build, field_errors
from segmentsync.web.page import Form, Page, PostedForm, page_for
from segmentsync.web.routing import web_router

router = web_router()
ScheduleViewer = Annotated[Page, page_for(Action.SCHEDULE_VIEW)]
ScheduleEditor = Annotated[Page, page_for(Action.SCHEDULE_EDIT)]
StatusViewer = Annotated[Page, page_for(Action.SYSTEM_STATUS)]
FIELDS = {"enabled": "enabled", "frequency": "frequency", "weekdays": "weekdays", "times": "times",
          "timezone": "timezone"}  # fmt: skip
RECENT = 25


def _numbers(values: list[str]) -> list[int | str]:
    """Whole numbers as typed; anything else is kept so that the schedule's check names the field."""
    return [number if (number := id_from_text(value)) is not None else value for value in values]


def _zones() -> list[str]:
    return sorted(available_timezones())


def _schedule_page(page: Page, *, form: Form | None = None, errors: dict[str, str] | None = None,
                   status: int = 200) -> Response:  # fmt: skip
    with page.transaction() as session:
        current = schedule.get(session=session, actor=page.me, now=page.runtime.clock())
    if form is not None:  # show what was typed, beside the error
        values = {
            "enabled": form.get("enabled") == "1", "frequency": form.get("frequency") or "daily",
            "weekdays": _numbers(form.getlist("weekdays")),
            "times": [t for t in form.getlist("times") if t], "timezone": form.get("timezone"),
        }  # fmt: skip
    else:
        values = current.model_dump(include={"enabled", "frequency", "weekdays", "times", "timezone"})
    day_names = get_day_names("wide", locale=page.lang)
    return page.render(
        "schedule.html", status=status, title=page._("Schedule"), current=current, values=values,
        errors=errors or {}, day_names=[(i, day_names[i]) for i in range(7)], zones=_zones(),
        max_times=schedule.MAX_TIMES, can_edit=page.can(Action.SCHEDULE_EDIT),
    )  # fmt: skip


@router.get("/system/schedule")
def schedule_page(page: ScheduleViewer) -> Response:
    return _schedule_page(page)


@router.post("/system/schedule")
def save_schedule(page: ScheduleEditor, form: PostedForm) -> Response:
    try:
        data = build(
            schedule.ScheduleIn,
            {
                "enabled": form.get("enabled") == "1",
                "frequency": form.get("frequency") or "daily",
                "weekdays": _numbers(form.getlist("weekdays")),
                "times": [t for t in form.getlist("times") if t],
                "timezone": form.get("timezone") or "UTC",
            },
        )
        with page.transaction() as session:
            schedule.update(session=session, data=data, actor=page.me, now=page.runtime.clock(), ip=page.ip)
    except SegmentSyncError as error:
        errors = field_errors(page, error, FIELDS)
        return _schedule_page(page, form=form, errors=errors, status=error.status)
    page.flash(page._("The schedule is saved."))
    return page.redirect("/system/schedule")


@router.post("/system/refresh")
def refresh_now(page: ScheduleEditor, form: PostedForm) -> Response:
    """A system refresh now: segments refreshed, exports "with every system refresh" queued."""
    now = page.runtime.clock()
    scheduler.system_refresh(page.runtime, now, now=now, trigger="on_demand")
    page.flash(page._("A system refresh ran: see its result below."))
    return page.redirect("/system/status")


@router.get("/system/status")
def status_page(page: StatusViewer) -> Response:
    with page.transaction() as session:
        refreshes = list(
            session.scalars(sa.select(SystemRefresh).order_by(SystemRefresh.started_at.desc()).limit(RECENT))
        )
        runs = list(
            session.scalars(sa.select(Run).order_by(Run.created_at.desc(), Run.id.desc()).limit(RECENT))
        )
        active = session.scalar(sa.select(sa.func.count()).where(Run.status.in_(ACTIVE_STATUSES))) or 0
        attention = (
            list(
                session.scalars(
                    sa.select(Connection).where(Connection.status == ConnectionStatus.NEEDS_ATTENTION)
                )
            )
            if page.can(Action.CONNECTIONS_MANAGE)
            else []
        )
        notices = (
            list(session.scalars(sa.select(Notification).order_by(Notification.created_at.desc()).limit(10)))
            if page.can(Action.NOTIFICATIONS_VIEW)
            else []
        )
        per_day = charts.runs_per_day(session, now=page.runtime.clock(), tr=page.tr)
    return page.render(
        "status.html", title=page._("Status"), refreshes=refreshes, runs=runs, active=active,
        attention=attention, notices=notices, per_day=per_day, status_days=charts.STATUS_DAYS,
    )  # fmt: skip
