"""When things run: the system refresh schedule (docs/scheduling.md) and each export's own cron recurrence.

The system refresh schedule is one row: off by default; daily or on chosen weekdays; up to four
times a day; in a time zone. Times are wall-clock times in that zone, so they follow daylight
saving time. Two rules make every local time map to exactly one instant:

* a time that does not exist (the hour skipped when clocks go forward) runs at the same offset
  as before the change, i.e. that much later in wall-clock time (02:30 → 03:30);
* a time that happens twice (the hour repeated when clocks go back) runs once, the first time.

Cron recurrences (five fields, or ``@daily``-style macros) are evaluated in the export's time
zone with the same two rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from pydantic import BaseModel, Field
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from segmentsync.auth import audit
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action, check
from segmentsync.errors import Invalid
from segmentsync.scheduling.models import SystemSchedule

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index 0 = Monday, as in datetime
MAX_TIMES = 4
SCHEDULE_ID = 1  # the single row
CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_MAX_CRON_STEPS = 100_000  # a cron that fires every minute has 1,440 times a day


class ScheduleIn(BaseModel):
    """The system refresh schedule as a form or the API sends it."""

    enabled: bool = Field(default=False, description="off by default")
    frequency: Literal["daily", "weekly"] = "daily"
    weekdays: list[int | str] = Field(
        default_factory=list, description="weekly only: 0 = Monday … 6 = Sunday, or mon … sun"
    )
    times: list[str] = Field(default_factory=list, description="up to four HH:MM times a day")
    timezone: str = Field(default="UTC", description="an IANA time zone, e.g. Europe/Warsaw")


class ScheduleOut(BaseModel):
    enabled: bool
    frequency: Literal["daily", "weekly"]
    weekdays: list[int]
    times: list[str]
    timezone: str
    description: str
    next_refreshes: list[datetime] = Field(description="the next few refreshes, in UTC")
    updated_at: datetime | None


@dataclass(frozen=True)
class Spec:
    """A validated system schedule."""

    enabled: bool
    frequency: Literal["daily", "weekly"]
    weekdays: tuple[int, ...]
    times: tuple[time, ...]
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def runs_on(self, day: date) -> bool:
        return self.frequency == "daily" or day.weekday() in self.weekdays


# ---------------------------------------------------------------- validation


def zone(name: str, *, field: str = "timezone") -> ZoneInfo:
    """The time zone called ``name`` (IANA), or Invalid saying so."""
    try:
        if not name.strip():
            raise ValueError(name)
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a directory, a long name
        raise Invalid(
            "unknown time zone %(name)s: use an IANA name such as UTC, Europe/Warsaw or America/New_York",
            params={"name": repr(name)},
            code="unknown_timezone",
            field=field,
        ) from exc


def parse_time(text: str) -> time:
    match = _TIME.match(text.strip())
    hour, minute = (int(match[1]), int(match[2])) if match else (-1, -1)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise Invalid(
            "%(text)s is not a time of day: write HH:MM, from 00:00 to 23:59",
            params={"text": repr(text)},
            field="times",
        )
    return time(hour, minute)


def parse_weekday(value: int | str) -> int:
    if isinstance(value, int) and 0 <= value <= 6:
        return value
    if isinstance(value, str) and value.strip().lower()[:3] in WEEKDAYS:
        return WEEKDAYS.index(value.strip().lower()[:3])
    raise Invalid(
        "%(value)s is not a weekday: use 0 (Monday) … 6 (Sunday) or %(names)s",
        params={"value": repr(value), "names": ", ".join(WEEKDAYS)},
        field="weekdays",
    )


def validate(data: ScheduleIn) -> Spec:
    """Check a schedule; Invalid with the field and a message a person can act on."""
    times = sorted({parse_time(text) for text in data.times})
    if len(times) != len(data.times):
        raise Invalid("the same time is given twice", field="times")
    if len(times) > MAX_TIMES:
        raise Invalid(
            "at most %(max)s refreshes a day (%(count)s times given)",
            params={"max": MAX_TIMES, "count": len(times)},
            field="times",
        )
    weekdays = sorted({parse_weekday(day) for day in data.weekdays}) if data.frequency == "weekly" else []
    if data.enabled and not times:
        raise Invalid("give at least one time of day for the refresh (HH:MM)", field="times")
    if data.enabled and data.frequency == "weekly" and not weekdays:
        raise Invalid("a weekly schedule needs at least one weekday", field="weekdays")
    timezone = zone(data.timezone).key
    return Spec(data.enabled, data.frequency, tuple(weekdays), tuple(times), timezone)


def spec_of(row: SystemSchedule) -> Spec:
    """The stored schedule (validated when it was saved)."""
    frequency: Literal["daily", "weekly"] = "weekly" if row.frequency == "weekly" else "daily"
    return Spec(
        enabled=row.enabled,
        frequency=frequency,
        weekdays=tuple(row.weekdays or ()),
        times=tuple(parse_time(text) for text in row.times or ()),
        timezone=row.timezone or "UTC",
    )


def check_cron(expression: str) -> str:
    """A cron recurrence, normalised: five fields (minute hour day month weekday) or a macro."""
    cleaned = " ".join(expression.split())
    if cleaned.startswith("@"):
        if cleaned.lower() not in CRON_MACROS:
            raise Invalid(
                "unknown cron macro %(cleaned)s; use one of %(names)s",
                params={"cleaned": repr(cleaned), "names": ", ".join(sorted(CRON_MACROS))},
                code="bad_cron",
                field="cron",
            )
        return cleaned.lower()
    if len(cleaned.split(" ")) != 5 or not croniter.is_valid(cleaned):
        raise Invalid(
            "%(expression)s is not a cron recurrence: give five fields, minute hour day-of-month month day-of-week, e.g. '0 6 * * 1-5' (06:00 on weekdays)",
            params={"expression": repr(expression)},
            code="bad_cron",
            field="cron",
        )
    return cleaned


# ---------------------------------------------------------------- time arithmetic


def local_to_utc(moment: datetime, tz: ZoneInfo) -> datetime:
    """A wall-clock time in ``tz`` as a UTC instant (skipped times move on, repeated ones run once)."""
    return moment.replace(tzinfo=tz, fold=0).astimezone(UTC)


def occurrences(spec: Spec, after: datetime, until: datetime) -> list[datetime]:
    """The system refreshes in ``(after, until]``, as UTC instants in order."""
    found: list[datetime] = []
    for instant in _instants(spec, after):
        if instant > until:
            break
        found.append(instant)
    return found


def next_occurrences(spec: Spec, now: datetime, count: int = 5) -> list[datetime]:
    """The next ``count`` system refreshes after ``now`` (none when the schedule is off)."""
    found: list[datetime] = []
    for instant in _instants(spec, now):
        found.append(instant)
        if len(found) >= count:
            break
    return found


def latest_due(spec: Spec, after: datetime, now: datetime) -> datetime | None:
    """The latest refresh in ``(after, now]``; older missed ones are folded into it."""
    due = occurrences(spec, after, now)
    return due[-1] if due else None


def _instants(spec: Spec, after: datetime) -> Iterator[datetime]:
    """Refresh instants strictly after ``after``, in order (empty when off)."""
    if not spec.enabled or not spec.times:
        return
    tz = spec.zone
    # Start a day early: near midnight the local date may be behind the UTC date.
    day = after.astimezone(tz).date() - timedelta(days=1)
    for _ in range(400 * 7):  # a weekly schedule has at least one day a week: never reached
        if spec.runs_on(day):
            for instant in sorted({local_to_utc(datetime.combine(day, t), tz) for t in spec.times}):
                if instant > after:
                    yield instant
        day += timedelta(days=1)


def cron_times(expression: str, timezone: str, after: datetime, until: datetime) -> list[datetime]:
    """The times of a cron recurrence in ``(after, until]`` (UTC), evaluated in ``timezone``."""
    tz = zone(timezone)
    # Iterate in naive wall-clock time (croniter's own DST handling is not what we document);
    # start an hour early so that a repeated hour is not missed, and filter by instant.
    start = after.astimezone(tz).replace(tzinfo=None) - timedelta(hours=1)
    iterator = croniter(check_cron(expression), start)
    found: list[datetime] = []
    for _ in range(_MAX_CRON_STEPS):
        instant = local_to_utc(iterator.get_next(datetime), tz)
        if instant > until + timedelta(hours=3):  # past the end even across a DST change
            break
        if after < instant <= until and (not found or instant > found[-1]):
            found.append(instant)
    return found


def cron_latest_due(expression: str, timezone: str, after: datetime, now: datetime) -> datetime | None:
    due = cron_times(expression, timezone, after, now)
    return due[-1] if due else None


def cron_next(expression: str, timezone: str, now: datetime) -> datetime | None:
    """The next time of a cron recurrence after ``now``, computed directly (not by listing a
    year of recurrences: ``*/5 * * * *`` has 105,000 a year).

    croniter finds the next wall-clock times in ``timezone`` from an hour before ``now`` (a
    repeated hour is not missed); the first whose instant is after ``now`` is the answer, unless a
    wall-clock time that maps to an earlier instant follows it within three hours (the hour skipped
    when clocks go forward maps an hour later). None when the recurrence never happens again (e.g.
    30 February).
    """
    tz = zone(timezone)
    iterator = croniter(check_cron(expression), now.astimezone(tz).replace(tzinfo=None) - timedelta(hours=1))
    best: datetime | None = None
    horizon: datetime | None = None
    try:
        while True:
            moment = iterator.get_next(datetime)
            if horizon is not None and moment > horizon:
                return best
            instant = local_to_utc(moment, tz)
            if instant > now and (best is None or instant < best):
                best = instant
                horizon = horizon or moment + timedelta(hours=3)
    except CroniterBadDateError:  # no date matches within croniter's search (e.g. 31 February)
        return best


# ---------------------------------------------------------------- the stored schedule


def describe(spec: Spec) -> str:
    if not spec.enabled:
        return "Off"
    times = ", ".join(t.strftime("%H:%M") for t in spec.times)
    if spec.frequency == "daily":
        days = "Every day"
    else:
        days = "Every " + ", ".join(WEEKDAYS[d].capitalize() for d in spec.weekdays)
    return f"{days} at {times} ({spec.timezone})"


def load(session: Session) -> SystemSchedule:
    """The stored schedule; the default (off) if it was never saved."""
    row = session.get(SystemSchedule, SCHEDULE_ID)
    if row is None:
        row = SystemSchedule(
            id=SCHEDULE_ID, enabled=False, frequency="daily", weekdays=[], times=[], timezone="UTC"
        )
    return row


def view(row: SystemSchedule, *, now: datetime, count: int = 5) -> ScheduleOut:
    spec = spec_of(row)
    return ScheduleOut(
        enabled=spec.enabled,
        frequency=spec.frequency,
        weekdays=list(spec.weekdays),
        times=[t.strftime("%H:%M") for t in spec.times],
        timezone=spec.timezone,
        description=describe(spec),
        next_refreshes=next_occurrences(spec, now, count),
        updated_at=row.updated_at if session_bound(row) else None,
    )


def session_bound(row: SystemSchedule) -> bool:
    """True for the saved row, False for the default one ``load`` made up."""
    return inspect(row).persistent


def get(*, session: Session, actor: User, now: datetime) -> ScheduleOut:
    check(actor, Action.SCHEDULE_VIEW)
    return view(load(session), now=now)


def update(
    *, session: Session, data: ScheduleIn, actor: User | None, now: datetime, ip: str | None = None
) -> ScheduleOut:
    """Save the system refresh schedule (admins). ``actor`` None: the command line's system user."""
    if actor is not None:
        check(actor, Action.SCHEDULE_EDIT)
    spec = validate(data)
    row = load(session)
    before = _snapshot(row) if session_bound(row) else None
    row.enabled = spec.enabled
    row.frequency = spec.frequency
    row.weekdays = list(spec.weekdays)
    row.times = [t.strftime("%H:%M") for t in spec.times]
    row.timezone = spec.timezone
    row.updated_by_id = actor.id if actor else None
    row.updated_at = now  # the scheduler never runs refreshes due before this moment
    session.add(row)
    session.flush()
    audit.record(
        session, actor=actor, action="schedule.update", object_type="system_schedule",
        object_id=SCHEDULE_ID, object_label=describe(spec), before=before, after=_snapshot(row), ip=ip,
    )  # fmt: skip
    return view(row, now=now)


def _snapshot(row: SystemSchedule) -> dict[str, object]:
    return {
        "enabled": row.enabled,
        "frequency": row.frequency,
        "weekdays": list(row.weekdays or ()),
        "times": list(row.times or ()),
        "timezone": row.timezone,
    }
