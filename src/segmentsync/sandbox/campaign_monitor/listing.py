"""Read-side shapes: subscriber details, paged subscriber listings, list details and stats."""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from operator import itemgetter
from typing import Any, Final

from segmentsync.sandbox.campaign_monitor import errors
from segmentsync.sandbox.campaign_monitor.store import (
    ACTIVE,
    BOUNCED,
    CONSENT,
    DATE,
    DELETED,
    EMAIL,
    JOINED,
    MOBILE,
    NAME,
    SMS,
    STATE,
    UNSUBSCRIBED,
    MailingList,
    Subscriber,
    format_time,
)

ORDER_FIELDS: Final = ("email", "name", "date")
ORDER_DIRECTIONS: Final = ("asc", "desc")
_DATE_PARAM = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_EPOCH = date(1970, 1, 1)
# list stats: (state entered, prefix of the per-period fields, name of the total)
_STAT_KINDS: Final = (
    (ACTIVE, "NewActiveSubscribers", "TotalActiveSubscribers"),
    (UNSUBSCRIBED, "Unsubscribes", "TotalUnsubscribes"),
    (DELETED, "Deleted", "TotalDeleted"),
    (BOUNCED, "Bounces", "TotalBounces"),
)


def query_bool(raw: str | None) -> bool:
    """Clients send ``True``/``False`` (Python's str) or ``true``/``false``."""
    return raw is not None and raw.strip().lower() in ("true", "1")


def render(mailing_list: MailingList, key: str, subscriber: Subscriber, *, consent: bool) -> dict[str, Any]:
    """SubscriberDetail (reference §2.7); ``CustomFields`` keys are the field names."""
    custom: list[dict[str, str]] = []
    for field in mailing_list.fields.values():
        if key in field.values:
            custom += field.rendered(key)
    detail: dict[str, Any] = {
        "EmailAddress": subscriber[EMAIL],
        "Name": subscriber[NAME],
        "Date": format_time(subscriber[DATE]),
        "ListJoinedDate": format_time(subscriber[JOINED]),
        "State": subscriber[STATE],
        "CustomFields": custom,
        "ReadsEmailWith": "",
    }
    if consent:
        detail["ConsentToTrack"] = subscriber[CONSENT]
    if subscriber[MOBILE]:
        detail["MobileNumber"] = subscriber[MOBILE]
        detail["ConsentToSendSms"] = subscriber[SMS] or "Unchanged"
    return detail


def _since(raw: str | None) -> int:
    """The ``date`` parameter as epoch seconds (0 when empty); Code 5 when it is no date."""
    if raw is None or not raw.strip():
        return 0
    match = _DATE_PARAM.fullmatch(raw.strip())
    if match is None:
        raise errors.bad_request(errors.INVALID_DATE)
    try:
        day = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise errors.bad_request(errors.INVALID_DATE) from None
    hour, minute, second = (int(part or 0) for part in match.groups()[3:])
    if hour > 23 or minute > 59 or second > 59:
        raise errors.bad_request(errors.INVALID_DATE)
    return calendar.timegm(day.timetuple()) + hour * 3600 + minute * 60 + second


def _int_param(raw: str | None, default: int, low: int, high: int, error: tuple[int, str]) -> int:
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.bad_request(error) from None
    if not low <= value <= high:
        raise errors.bad_request(error)
    return value


def page_params(query: dict[str, str]) -> tuple[int, int]:
    """``page`` (from 1; 800) and ``pagesize`` (10-1000, default 1000; 801)."""
    page = _int_param(query.get("page"), 1, 1, 2**31 - 1, errors.INVALID_PAGE)
    return page, _int_param(query.get("pagesize"), 1000, 10, 1000, errors.INVALID_PAGE_SIZE)


def _choice(raw: str | None, choices: tuple[str, ...], error: tuple[int, str]) -> str:
    value = (raw or choices[0]).strip().lower()
    if value not in choices:
        raise errors.bad_request(error)
    return value


def paged(mailing_list: MailingList, state: str, query: dict[str, str]) -> dict[str, Any]:
    """``GET lists/{listid}/{state}.json``: one page of the subscribers in ``state``.

    ``date`` keeps those whose state changed at or after it. A page past the last one is empty.
    """
    since = _since(query.get("date"))
    page, size = page_params(query)
    order = _choice(query.get("orderfield"), ORDER_FIELDS, errors.INVALID_ORDER_FIELD)
    direction = _choice(query.get("orderdirection"), ORDER_DIRECTIONS, errors.INVALID_ORDER_DIRECTION)
    consent = query_bool(query.get("includetrackingpreference"))
    rows = _sorted(mailing_list, state, since, order, direction)
    total = len(rows)
    start = (page - 1) * size
    results = [render(mailing_list, key, sub, consent=consent) for key, sub in rows[start : start + size]]
    return {
        "Results": results,
        "ResultsOrderedBy": order,
        "OrderDirection": direction,
        "PageNumber": page,
        "PageSize": size,
        "RecordsOnThisPage": len(results),
        "TotalNumberOfRecords": total,
        "NumberOfPages": -(-total // size),
    }


def _sorted(
    mailing_list: MailingList, state: str, since: int, order: str, direction: str
) -> list[tuple[str, Subscriber]]:
    """Sorted once per list version: paging through millions must not sort for every page."""
    cache_key = (state, since, order, direction)
    rows = mailing_list.sorted_cache.get(cache_key)
    if rows is not None:
        return rows
    rows = [
        (key, sub)
        for key, sub in mailing_list.subscribers.items()
        if sub[STATE] == state and sub[DATE] >= since
    ]
    reverse = direction == "desc"
    if order == "email":
        rows.sort(key=itemgetter(0), reverse=reverse)
    elif order == "name":
        rows.sort(key=lambda row: (row[1][NAME].lower(), row[0]), reverse=reverse)
    else:
        rows.sort(key=lambda row: (row[1][DATE], row[0]), reverse=reverse)
    if len(mailing_list.sorted_cache) > 8:
        mailing_list.sorted_cache.clear()
    mailing_list.sorted_cache[cache_key] = rows
    return rows


def details(mailing_list: MailingList) -> dict[str, Any]:
    return {
        "ConfirmedOptIn": mailing_list.confirmed_opt_in,
        "Title": mailing_list.title,
        "UnsubscribePage": mailing_list.unsubscribe_page,
        "ListID": mailing_list.list_id,
        "ConfirmationSuccessPage": mailing_list.confirmation_success_page,
        "UnsubscribeSetting": mailing_list.unsubscribe_setting,
    }


def stats(mailing_list: MailingList, now: int) -> dict[str, int]:
    """ListStats: totals are the current counts per state, periods count entries into a state."""
    today = now // 86400
    day = _EPOCH + timedelta(days=today)
    periods = {
        "Today": (today, today),
        "Yesterday": (today - 1, today - 1),
        "ThisWeek": (today - day.weekday(), today),
        "ThisMonth": (today - day.day + 1, today),
        "ThisYear": (today - day.timetuple().tm_yday + 1, today),
    }
    result: dict[str, int] = {}
    for state, prefix, total in _STAT_KINDS:
        result[total] = mailing_list.counts[state]
        for period, (first, last) in periods.items():
            result[prefix + period] = sum(
                count
                for (entered, when), count in mailing_list.events.items()
                if entered == state and first <= when <= last
            )
    return result
