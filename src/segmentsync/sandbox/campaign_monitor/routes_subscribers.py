"""Subscriber endpoints under /api/v3.3: add, update, get, delete, import, unsubscribe."""

from __future__ import annotations

from typing import Final

from segmentsync.sandbox.campaign_monitor import errors, subscribers
from segmentsync.sandbox.campaign_monitor.call import NO_BODY, Call, Handler, Reply
from segmentsync.sandbox.campaign_monitor.errors import ApiError
from segmentsync.sandbox.campaign_monitor.listing import query_bool, render
from segmentsync.sandbox.campaign_monitor.store import EMAIL, MailingList

IMPORT_SUBSCRIBERS: Final = frozenset({"ImportSubscribers"})
READ_SUBSCRIBERS: Final = frozenset({"ImportSubscribers", "ManageLists"})


def _throttle(call: Call, mailing_list: MailingList, email: object) -> None:
    """CM's per-address 429 when one address is added or updated too often, too quickly."""
    limits = call.emulator.limits
    if limits.subscriber_throttle is None or not isinstance(email, str):
        return
    allowed, _, _ = call.emulator.subscriber_windows.hit(
        (mailing_list.client_id, email.strip().lower()),
        limit=limits.subscriber_throttle,
        window=limits.subscriber_throttle_window_seconds,
        now=call.emulator.now(),
    )
    if not allowed:
        raise ApiError(429, *errors.SUBSCRIBER_THROTTLED)


async def add(call: Call) -> Reply:
    """Add or update one subscriber: 201 with the address as stored."""
    mailing_list = call.own_list(call.param("listid"))
    row = await call.body("subscriber")
    subscribers.check_shape(row, "subscriber")
    resubscribe = subscribers.as_bool(row.get("resubscribe"), "subscriber")
    _throttle(call, mailing_list, row.get("emailaddress"))
    try:
        _, subscriber = subscribers.upsert(
            call.emulator.store, mailing_list, row, resubscribe=resubscribe, now=call.now()
        )
    except subscribers.RowFailure as failure:
        raise ApiError(400, failure.code, failure.message) from None
    finally:
        mailing_list.touch()
    return 201, subscriber[EMAIL]


async def update(call: Call) -> Reply:
    mailing_list = call.own_list(call.param("listid"))
    row = await call.body("subscriber")
    _throttle(call, mailing_list, row.get("emailaddress"))
    subscribers.update(call.emulator.store, mailing_list, call.query("email"), row, now=call.now())
    return 200, NO_BODY


async def get(call: Call) -> Reply:
    mailing_list = call.own_list(call.param("listid"))
    key, subscriber = subscribers.find(mailing_list, call.query("email"), errors.INVALID_EMAIL)
    consent = query_bool(call.query("includetrackingpreference"))
    return 200, render(mailing_list, key, subscriber, consent=consent)


async def delete(call: Call) -> Reply:
    mailing_list = call.own_list(call.param("listid"))
    subscribers.delete(mailing_list, call.query("email"), now=call.now())
    return 200, NO_BODY


async def import_many(call: Call) -> Reply:
    """Up to 1,000 at once; with failures: 400 Code 210 whose ResultData lists them (others stored)."""
    mailing_list = call.own_list(call.param("listid"))
    body = await call.body("subscribers")
    result = subscribers.import_batch(call.emulator.store, mailing_list, body, now=call.now())
    if result["FailureDetails"]:
        raise ApiError(400, *errors.IMPORT_FAILURES, result_data=result)
    return 201, result


async def unsubscribe(call: Call) -> Reply:
    mailing_list = call.own_list(call.param("listid"))
    body = await call.body("subscriber")
    subscribers.unsubscribe(call.emulator.store, mailing_list, body.get("emailaddress"), now=call.now())
    return 200, NO_BODY


ROUTES: Final[list[tuple[str, str, Handler, frozenset[str] | None]]] = [
    ("POST", "/subscribers/{listid}.json", add, IMPORT_SUBSCRIBERS),
    ("PUT", "/subscribers/{listid}.json", update, IMPORT_SUBSCRIBERS),
    ("GET", "/subscribers/{listid}.json", get, READ_SUBSCRIBERS),
    ("DELETE", "/subscribers/{listid}.json", delete, IMPORT_SUBSCRIBERS),
    ("POST", "/subscribers/{listid}/import.json", import_many, IMPORT_SUBSCRIBERS),
    ("POST", "/subscribers/{listid}/unsubscribe.json", unsubscribe, IMPORT_SUBSCRIBERS),
]
