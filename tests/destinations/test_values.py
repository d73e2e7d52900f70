"""Fitting values to fields, attributing NEW to rows, and following rate-limit headers."""

from __future__ import annotations

from datetime import date

import pytest

from segmentsync.destinations.attribution import new_rows
from segmentsync.destinations.base import FieldInfo, FieldType, Member
from segmentsync.destinations.field_values import Value, fit
from segmentsync.destinations.ratelimit import HeaderPacer, TokenBucket

from .fakes import FakeTime

TEXT = FieldInfo("[City]", "City", FieldType.TEXT)
NUMBER = FieldInfo("[Age]", "Age", FieldType.NUMBER)
DATE = FieldInfo("[Joined]", "Joined", FieldType.DATE)
ONE = FieldInfo("[Plan]", "Plan", FieldType.SELECT_ONE, ("Free", "Pro"))
MANY = FieldInfo("[Tags]", "Tags", FieldType.SELECT_MANY, ("Red", "Blue"))
COUNTRY = FieldInfo("[Country]", "Country", FieldType.OTHER, ("Latvia", "Finland"))
CM_DATES = (date(1900, 1, 1), date(2076, 6, 6))


@pytest.mark.parametrize(
    ("field", "value", "values", "note"),
    [
        (TEXT, "Riga", ("Riga",), None),
        (TEXT, "x" * 12, ("x" * 10,), "City: trimmed to 10 characters"),
        (TEXT, 42, ("42",), None),
        (TEXT, None, (), None),  # clear
        (NUMBER, 42, ("42",), None),
        (NUMBER, "-3.5", ("-3.5",), None),
        (NUMBER, 2.5, ("2.5",), None),
        (NUMBER, "forty", None, "Age: 'forty' is not a number; left out"),
        (NUMBER, True, None, "Age: 'true' is not a number; left out"),
        (NUMBER, float("nan"), None, "Age: 'nan' is not a number; left out"),
        (DATE, "2024-02-29", ("2024/02/29",), None),
        (DATE, "2024/2/9", ("2024/02/09",), None),
        (DATE, "2024-02-29T10:00:00Z", ("2024/02/29",), None),
        (DATE, "2024-02-30", None, "Joined: '2024-02-30' is not a date (YYYY-MM-DD); left out"),
        (DATE, "1899-12-31", None, "Joined: 1899-12-31 is outside 1900-01-01..2076-06-06; left out"),
        (ONE, "pro", ("Pro",), None),
        (ONE, "Gold", None, "Plan: 'Gold' not among the options; left out"),
        (MANY, ["red", "BLUE"], ("Red", "Blue"), None),
        (MANY, ["red", "green"], ("Red",), "Tags: 'green' not among the options; left out"),
        (MANY, "blue", ("Blue",), None),
        (COUNTRY, "latvia", ("Latvia",), None),
        (COUNTRY, "Narnia", None, "Country: 'Narnia' not among the options; left out"),
    ],
)
def test_a_value_is_fitted_to_its_field(
    field: FieldInfo, value: Value, values: tuple[str, ...] | None, note: str | None
) -> None:
    fitted = fit(value, field, max_chars=10, date_format="%Y/%m/%d", date_range=CM_DATES)
    assert (fitted.values, fitted.note) == (values, note)


def members(*plans: bool | None) -> list[Member]:
    return [Member(f"m{i}@example.com", delivered_before=plan) for i, plan in enumerate(plans)]


@pytest.mark.parametrize(
    ("plans", "total_new", "new"),
    [
        ((True, True, False), 0, set()),  # nothing new on the platform: all updated, whatever the plan
        ((True, True, False), 3, {0, 1, 2}),  # all new on the platform
        ((True, False, True, False), 2, {1, 3}),  # the plan agrees with the total: exact
        ((True, False, None, True), 2, {1, 2}),  # it does not: planned-new first, then unknown
        ((None, None, None), 1, {0}),  # no plan at all: batch order
    ],
)
def test_new_rows_follow_the_platform_total(
    plans: tuple[bool | None, ...], total_new: int, new: set[int]
) -> None:
    assert new_rows(members(*plans), range(len(plans)), total_new) == new


def rate_headers(remaining: int, reset: float, limit: int = 100) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": str(reset),
    }


def test_the_header_pacer_spreads_the_last_requests_until_the_reset() -> None:
    time = FakeTime()
    pacer = HeaderPacer(clock=time.clock, sleep=time.sleep)
    pacer.acquire()
    pacer.observe(rate_headers(50, 8))
    pacer.acquire()
    pacer.observe(rate_headers(4, 8))
    assert time.slept == []  # plenty left: full speed
    start = time.now
    for remaining in (3, 2, 1, 0):
        pacer.acquire()
        pacer.observe(rate_headers(remaining, 8 - (time.now - start)))
    pacer.acquire()  # Remaining 0: after the reset
    pacer.observe(rate_headers(99, 10))
    assert time.slept == pytest.approx([2.0, 2.0, 2.0, 2.0])  # 4 left over 8 s, then the reset
    pacer.pause(30)
    pacer.acquire()
    assert time.slept[-1] == pytest.approx(30)


def test_the_header_pacer_sends_nothing_after_remaining_0_until_the_reset() -> None:
    time = FakeTime()
    pacer = HeaderPacer(clock=time.clock, sleep=time.sleep)
    pacer.acquire()
    pacer.observe(rate_headers(0, 5))
    assert pacer.acquire() == pytest.approx(5)


def test_the_token_bucket_spaces_requests_and_allows_its_burst() -> None:
    time = FakeTime()
    bucket = TokenBucket(4, burst=2, clock=time.clock, sleep=time.sleep)
    waits = [bucket.acquire() for _ in range(4)]
    assert waits == pytest.approx([0, 0, 0.25, 0.25])
