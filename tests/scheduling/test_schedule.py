"""System > Schedule: validation, next refreshes and cron times in time zones, across
daylight saving time; saving the schedule (admins only, audited)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from exports.world import World  # tests/ is on sys.path (rootdir)
from segmentsync.auth.models import AuditEntry
from segmentsync.db import transaction
from segmentsync.errors import Forbidden, Invalid
from segmentsync.runtime import Runtime
from segmentsync.scheduling import schedule
from segmentsync.scheduling.schedule import ScheduleIn


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]  # year, month, day, … as given


def spec(**fields: Any) -> schedule.Spec:
    return schedule.validate(ScheduleIn(**{"enabled": True, **fields}))


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"times": []}, "times", "at least one time"),
        ({"times": ["06:00", "07:00", "08:00", "09:00", "10:00"]}, "times", "at most 4"),
        ({"times": ["24:00"]}, "times", "not a time of day"),
        ({"times": ["6:60"]}, "times", "not a time of day"),
        ({"times": ["noon"]}, "times", "HH:MM"),
        ({"times": ["06:00", "6:00"]}, "times", "twice"),
        ({"times": ["06:00"], "frequency": "weekly"}, "weekdays", "at least one weekday"),
        ({"times": ["06:00"], "frequency": "weekly", "weekdays": ["funday"]}, "weekdays", "not a weekday"),
        ({"times": ["06:00"], "frequency": "weekly", "weekdays": [7]}, "weekdays", "0 (Monday)"),
        ({"times": ["06:00"], "timezone": "Europe/Atlantis"}, "timezone", "unknown time zone"),
        ({"times": ["06:00"], "timezone": "Europe"}, "timezone", "unknown time zone"),
        ({"times": ["06:00"], "timezone": "../../etc/passwd"}, "timezone", "unknown time zone"),
        ({"times": ["06:00"], "timezone": ""}, "timezone", "unknown time zone"),
    ],
)
def test_a_bad_schedule_is_refused_with_a_clear_message(
    fields: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(Invalid) as caught:
        spec(**fields)
    assert caught.value.field == field
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("fields", "weekdays", "times"),
    [
        ({"times": ["18:30", "6:05"]}, (), ("06:05", "18:30")),  # sorted, zero-padded
        ({"times": ["06:00"], "weekdays": [1, 2]}, (), ("06:00",)),  # daily: weekdays ignored
        ({"times": ["06:00"], "frequency": "weekly", "weekdays": ["Mon", "thursday", 0]}, (0, 3), ("06:00",)),
    ],
)
def test_a_good_schedule_is_normalised(
    fields: dict[str, Any], weekdays: tuple[int, ...], times: tuple[str, ...]
) -> None:
    result = spec(**fields)
    assert result.weekdays == weekdays
    assert tuple(t.strftime("%H:%M") for t in result.times) == times


def test_an_off_schedule_needs_nothing_and_never_runs() -> None:
    off = schedule.validate(ScheduleIn())
    assert not off.enabled
    assert schedule.next_occurrences(off, utc(2026, 1, 1), 5) == []
    assert schedule.describe(off) == "Off"


@pytest.mark.parametrize(
    ("fields", "after", "expected"),
    [
        # daily in UTC
        ({"times": ["06:00"]}, utc(2026, 1, 1, 5), [utc(2026, 1, 1, 6), utc(2026, 1, 2, 6), utc(2026, 1, 3, 6)]),
        ({"times": ["06:00"]}, utc(2026, 1, 1, 6), [utc(2026, 1, 2, 6), utc(2026, 1, 3, 6), utc(2026, 1, 4, 6)]),
        # Warsaw: UTC+1 in winter, UTC+2 in summer
        ({"times": ["06:00"], "timezone": "Europe/Warsaw"}, utc(2026, 1, 10), [utc(2026, 1, 10, 5), utc(2026, 1, 11, 5), utc(2026, 1, 12, 5)]),
        ({"times": ["06:00"], "timezone": "Europe/Warsaw"}, utc(2026, 7, 10), [utc(2026, 7, 10, 4), utc(2026, 7, 11, 4), utc(2026, 7, 12, 4)]),
        # clocks go forward on 29 March 2026 at 02:00: 02:30 does not exist and runs at 03:30 CEST
        ({"times": ["02:30"], "timezone": "Europe/Warsaw"}, utc(2026, 3, 28), [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]),
        # ... and a schedule at 02:30 and 03:30 runs once that night, not twice
        ({"times": ["02:30", "03:30"], "timezone": "Europe/Warsaw"}, utc(2026, 3, 28, 22), [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30), utc(2026, 3, 30, 1, 30)]),
        # clocks go back on 25 October 2026 at 03:00: 02:30 happens twice and runs once (the first)
        ({"times": ["02:30"], "timezone": "Europe/Warsaw"}, utc(2026, 10, 24, 12), [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30), utc(2026, 10, 27, 1, 30)]),
        # weekly on Monday and Thursday in New York (EST, UTC-5)
        ({"frequency": "weekly", "weekdays": ["mon", "thu"], "times": ["09:00", "17:30"], "timezone": "America/New_York"}, utc(2026, 1, 5), [utc(2026, 1, 5, 14), utc(2026, 1, 5, 22, 30), utc(2026, 1, 8, 14)]),
        # ahead of UTC near midnight: Auckland's 00:30 on 1 July is 12:30 UTC on 30 June
        ({"times": ["00:30"], "timezone": "Pacific/Auckland"}, utc(2026, 6, 30), [utc(2026, 6, 30, 12, 30), utc(2026, 7, 1, 12, 30), utc(2026, 7, 2, 12, 30)]),
    ],
)  # fmt: skip
def test_next_refreshes(fields: dict[str, Any], after: datetime, expected: list[datetime]) -> None:
    assert schedule.next_occurrences(spec(**fields), after, 3) == expected


def test_the_latest_due_refresh_folds_the_missed_ones_into_one() -> None:
    every_hour = spec(times=["06:00", "07:00", "08:00"])
    assert schedule.latest_due(every_hour, utc(2026, 1, 1, 5), utc(2026, 1, 1, 8, 30)) == utc(2026, 1, 1, 8)
    assert schedule.latest_due(every_hour, utc(2026, 1, 1, 8), utc(2026, 1, 1, 8, 30)) is None
    assert schedule.occurrences(every_hour, utc(2026, 1, 1, 5), utc(2026, 1, 1, 7)) == [
        utc(2026, 1, 1, 6),
        utc(2026, 1, 1, 7),
    ]


@pytest.mark.parametrize(
    ("cron", "timezone", "after", "until", "expected"),
    [
        ("0 6 * * *", "UTC", utc(2026, 1, 1), utc(2026, 1, 3), [utc(2026, 1, 1, 6), utc(2026, 1, 2, 6)]),
        ("0 6 * * 1-5", "Europe/Warsaw", utc(2026, 1, 9), utc(2026, 1, 13), [utc(2026, 1, 9, 5), utc(2026, 1, 12, 5)]),
        ("@daily", "Europe/Warsaw", utc(2026, 7, 1), utc(2026, 7, 2), [utc(2026, 7, 1, 22)]),
        # the skipped hour: 02:30 runs at 03:30 CEST (01:30 UTC), once
        ("30 2 * * *", "Europe/Warsaw", utc(2026, 3, 28, 12), utc(2026, 3, 30, 12), [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]),
        # the repeated hour: 02:00 runs once (the first time); hourly runs have a 2-hour gap that night
        ("0 * * * *", "Europe/Warsaw", utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 2, 30), [utc(2026, 10, 25, 0), utc(2026, 10, 25, 2)]),
        ("*/15 * * * *", "UTC", utc(2026, 1, 1, 6), utc(2026, 1, 1, 7), [utc(2026, 1, 1, 6, 15), utc(2026, 1, 1, 6, 30), utc(2026, 1, 1, 6, 45), utc(2026, 1, 1, 7)]),
    ],
)  # fmt: skip
def test_cron_times_in_a_time_zone(
    cron: str, timezone: str, after: datetime, until: datetime, expected: list[datetime]
) -> None:
    assert schedule.cron_times(cron, timezone, after, until) == expected


def test_cron_next_and_latest_due() -> None:
    assert schedule.cron_next("0 6 1 1 *", "UTC", utc(2026, 6, 1)) == utc(2027, 1, 1, 6)
    assert schedule.cron_latest_due("*/5 * * * *", "UTC", utc(2026, 1, 1, 6), utc(2026, 1, 1, 6, 12)) == utc(
        2026, 1, 1, 6, 10
    )


def test_saving_the_schedule_is_for_admins_and_audited(runtime: Runtime, world: World) -> None:
    now = utc(2026, 1, 1, 12)
    with runtime.sessions() as session:
        shown = schedule.get(session=session, actor=world.viewer.load(runtime), now=now)
    assert (shown.enabled, shown.description, shown.next_refreshes, shown.updated_at) == (
        False,
        "Off",
        [],
        None,
    )
    data = ScheduleIn(
        enabled=True, frequency="weekly", weekdays=["fri"], times=["07:15"], timezone="Europe/Riga"
    )
    with pytest.raises(Forbidden), transaction(runtime.sessions) as session:
        schedule.update(session=session, data=data, actor=world.contributor.load(runtime), now=now)
    with transaction(runtime.sessions) as session:
        saved = schedule.update(session=session, data=data, actor=world.admin.load(runtime), now=now)
    assert saved.description == "Every Fri at 07:15 (Europe/Riga)"
    assert saved.next_refreshes[0] == utc(2026, 1, 2, 5, 15)  # Riga is UTC+2 in winter
    with runtime.sessions() as session:
        shown = schedule.get(session=session, actor=world.viewer.load(runtime), now=now)
        entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "schedule.update"))
    assert shown.updated_at == now
    assert shown.weekdays == [4]
    assert entry is not None
    assert entry.after == {
        "enabled": True,
        "frequency": "weekly",
        "weekdays": [4],
        "times": ["07:15"],
        "timezone": "Europe/Riga",
    }
