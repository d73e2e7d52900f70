"""``cron_next`` (computed directly) agrees with a brute-force walk of wall-clock minutes, for many
recurrences and time zones, daylight saving time included.

The brute force knows nothing of croniter: it matches each field itself (Vixie cron's rule: when
both day of month and day of week are restricted, either may match), maps every matching
wall-clock time to its instant by the documented rule (a skipped time runs at the offset before
the change; a repeated time runs once, the first time) and takes the earliest instant after now.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from segmentsync.scheduling import schedule

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
EXPRESSIONS = [
    "* * * * *",
    "*/5 * * * *",
    "*/7 */3 * * *",
    "0 * * * *",
    "30 2 * * *",
    "0 2 * * *",
    "15,45 1-3 * * *",
    "0 6 * * 1-5",
    "0 12 * * 0",
    "0 12 * * 7",
    "0 0 1 * *",
    "59 23 31 * *",
    "0 9 1,15 * 1",
    "0 0 29 2 *",
    "5 4 * 3,10 0",
    "@daily",
    "@hourly",
    "@weekly",
    "@monthly",
    "@yearly",
]
ZONES = [
    "UTC",
    "Europe/Warsaw",
    "America/New_York",
    "Australia/Lord_Howe",  # a half-hour change
    "Asia/Kolkata",
    "Pacific/Chatham",  # +12:45 / +13:45
]
# Around each change of 2026 (UTC), and a few ordinary moments.
MOMENTS = [
    datetime(2026, 3, 8, 6, 55, tzinfo=UTC),  # New York, spring
    datetime(2026, 3, 29, 0, 59, tzinfo=UTC),  # Europe, spring
    datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # Europe, autumn
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 5, 59, tzinfo=UTC),  # New York, autumn
    datetime(2026, 4, 4, 14, 45, tzinfo=UTC),  # Lord Howe, autumn
    datetime(2026, 10, 3, 15, 20, tzinfo=UTC),  # Lord Howe, spring
    datetime(2026, 4, 4, 13, 50, tzinfo=UTC),  # Chatham, autumn
    datetime(2026, 9, 26, 14, 0, tzinfo=UTC),  # Chatham, spring
]


def _field(text: str, low: int, high: int) -> set[int]:
    found: set[int] = set()
    for part in text.split(","):
        body, _, step = part.partition("/")
        if body == "*":
            start, end = low, high
        elif "-" in body:
            start, end = (int(x) for x in body.split("-"))
        else:
            start = end = int(body)
            if step:
                end = high
        found.update(range(start, end + 1, int(step or 1)))
    return found


def brute_next(expression: str, timezone: str, now: datetime) -> datetime | None:
    minute, hour, dom, month, dow = MACROS.get(expression, expression).split()
    minutes, hours = sorted(_field(minute, 0, 59)), sorted(_field(hour, 0, 23))
    doms, months = _field(dom, 1, 31), _field(month, 1, 12)
    dows = {d % 7 for d in _field(dow, 0, 7)}  # 0 and 7: Sunday
    either = dom != "*" and dow != "*"
    tz = ZoneInfo(timezone)
    best: datetime | None = None
    day: date = now.astimezone(tz).date() - timedelta(days=1)
    while day.year < now.year + 9:
        if best is not None and datetime.combine(day, datetime.min.time(), tz) > best + timedelta(days=1):
            return best
        on_dom, on_dow = day.day in doms, (day.isoweekday() % 7) in dows
        if day.month in months and ((on_dom or on_dow) if either else (on_dom and on_dow)):
            for h in hours:
                for m in minutes:
                    instant = datetime(day.year, day.month, day.day, h, m, tzinfo=tz, fold=0).astimezone(UTC)
                    if instant > now and (best is None or instant < best):
                        best = instant
        day += timedelta(days=1)
    return best


def _cases() -> list[tuple[str, str, datetime]]:
    rng = random.Random(16)
    cases = []
    for expression in EXPRESSIONS:
        for timezone in ZONES:
            moments = [
                *MOMENTS,
                *(
                    datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(525_600))
                    for _ in range(3)
                ),
            ]
            cases += [(expression, timezone, moment) for moment in moments]
    return cases


def test_cron_next_agrees_with_a_brute_force_walk() -> None:
    disagreements = []
    for expression, timezone, now in _cases():
        expected = brute_next(expression, timezone, now)
        got = schedule.cron_next(expression, timezone, now)
        if got != expected:
            disagreements.append((expression, timezone, now.isoformat(), got, expected))
    assert disagreements == []


@pytest.mark.parametrize(
    ("expression", "timezone", "now", "expected"),
    [
        # the skipped hour: 02:30 runs at 03:30 CEST
        ("30 2 * * *", "Europe/Warsaw", datetime(2026, 3, 28, 12, tzinfo=UTC), datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        # the repeated hour runs once: after 02:00 CEST (00:00 UTC) the next hourly run is 03:00 CET
        ("0 * * * *", "Europe/Warsaw", datetime(2026, 10, 25, 0, 0, tzinfo=UTC), datetime(2026, 10, 25, 2, tzinfo=UTC)),
        ("0 0 29 2 *", "UTC", datetime(2026, 3, 1, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_cron_next_examples(expression: str, timezone: str, now: datetime, expected: datetime) -> None:
    assert schedule.cron_next(expression, timezone, now) == expected


def test_a_recurrence_that_never_happens_has_no_next_time() -> None:
    assert schedule.cron_next("0 0 31 2 *", "UTC", datetime(2026, 1, 1, tzinfo=UTC)) is None
