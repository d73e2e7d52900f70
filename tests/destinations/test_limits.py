"""Limits that one platform sets for many senders: Constant Contact's unsubscribed lookup (once
per batch), Campaign Monitor's ``X-RateLimit-*`` headers obeyed by every thread, and Constant
Contact's per-application rate and daily quota shared through the metadata store."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sqlalchemy as sa

from segmentsync.db import create_engine
from segmentsync.destinations import LimitStore
from segmentsync.destinations.base import Member
from segmentsync.destinations.shared_limits import StoreLimits
from segmentsync.errors import QuotaExceeded
from segmentsync.outcomes import Outcome
from segmentsync.sandbox.launcher import Sandbox

from .platforms import CampaignMonitor, ConstantContact

UNSUBSCRIBED_LOOKUP = "GET /v3/contacts"
PROCESSES = 3
# One process of the shared-limits tests: ``requests`` reads of the account (``verify``) through a
# Constant Contact destination whose limits live in the store; it prints what it got.
CHILD = """
import json, sys
from segmentsync.db import create_engine
from segmentsync.destinations import LimitStore, create_destination
from segmentsync.destinations.base import Credentials
from segmentsync.destinations.policy import RetryPolicy, Tuning
from segmentsync.errors import QuotaExceeded

args = json.loads(sys.argv[1])
engine = create_engine(args["store_url"])
destination = create_destination(
    "constant_contact", credentials=Credentials(**args["credentials"]), api_url=args["api_url"],
    oauth_url=args["oauth_url"], on_tokens=None,
    tuning=Tuning(retry=RetryPolicy(attempts=5, timeout=60, wait_initial=0.01, wait_max=0.1, wait_jitter=0)),
    limit_store=LimitStore(engine, args["quota"]),
)
sent, refused = 0, False
for _ in range(args["requests"]):
    try:
        destination.lists()  # one request (verify makes two)
    except QuotaExceeded:
        refused = True
        break
    sent += 1
print(json.dumps({"sent": sent, "quota_refused": refused, "pushback": destination.pushback()}))
destination.close()
engine.dispose()
"""


def test_the_unsubscribed_are_looked_up_once_per_batch_not_once_per_row(sandbox: Sandbox) -> None:
    platform = ConstantContact(sandbox)
    destination = platform.destination()
    list_id = platform.new_list("Opt-outs")
    members = [Member(f"u{i}@example.com", {"first_name": "U"}) for i in range(30)]
    destination.upsert(list_id, members)
    platform.unsubscribe(list_id, "u1@example.com")
    destination.upsert(list_id, members)  # the unsubscribed are fetched (and kept) here
    before = platform.stats()["requests"].get(UNSUBSCRIBED_LOOKUP, 0)
    platform.unsubscribe(list_id, "u2@example.com")  # the kept list is out of date now
    results = destination.upsert(list_id, members)
    destination.close()
    assert {i for i, r in enumerate(results) if r.outcome is Outcome.SKIPPED} == {1, 2}
    assert platform.stats()["requests"].get(UNSUBSCRIBED_LOOKUP, 0) - before == 1


def test_campaign_monitor_headers_hold_every_thread_back(sandbox: Sandbox) -> None:
    """Eight removal threads, seven removals, 3 requests per window: no request leaves after an answer
    that said ``Remaining: 0`` before the reset, so none is refused."""
    platform = CampaignMonitor(sandbox)
    list_id = platform.new_list("Paced")
    emails = [f"r{i}@example.com" for i in range(7)]
    platform.faults(rate_limit=3, rate_limit_window_seconds=1)
    destination = platform.destination()
    destination.custom_fields(list_id)  # the first answer tells the window
    results = destination.remove(list_id, emails)
    destination.close()
    assert {r.outcome for r in results} == {Outcome.REMOVED}
    assert destination.pushback() == 0  # no 429 (nor anything else that asked us to slow down)
    assert platform.stats()["requests"]["DELETE /api/v3.3/subscribers/{listid}.json"] == len(emails)


def run_processes(platform: ConstantContact, store_url: str, *, requests: int, quota: int) -> list[dict]:
    """``PROCESSES`` processes at once, each its own destination of the one application."""
    credentials = {
        "access_token": platform.account["access_token"],
        "refresh_token": platform.account["refresh_token"],
        "oauth_client_id": platform.account["client_id"],
        "oauth_client_secret": platform.account["client_secret"],
    }
    args = json.dumps(
        {"store_url": store_url, "credentials": credentials, "api_url": platform.api_url,
         "oauth_url": platform.oauth_url, "requests": requests, "quota": quota}
    )  # fmt: skip
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, args], stdout=subprocess.PIPE, text=True)
        for _ in range(PROCESSES)
    ]
    outputs = [child.communicate(timeout=120)[0] for child in children]
    assert [child.returncode for child in children] == [0] * PROCESSES, outputs
    return [json.loads(output) for output in outputs]


def test_processes_share_the_applications_rate_and_daily_quota(sandbox: Sandbox, store_url: str) -> None:
    """Three processes want 6 requests each from one application allowed 4 requests/s and 14 a
    day. Each process alone would keep to 4/s and 14 a day, together to neither: about two in
    three requests were refused, and the platform had to refuse the quota's overrun. Shared
    through the store: at most one 429 per process, 14 sent in all, and none refused for quota."""
    platform = ConstantContact(sandbox)
    platform.faults(requests_per_second=4, daily_quota=14)
    results = run_processes(platform, store_url, requests=6, quota=14)
    assert sum(r["sent"] for r in results) == 14
    assert any(r["quota_refused"] for r in results)
    stats = platform.stats()
    assert stats["limited"].get("quota_exceeded", 0) == 0  # the platform never had to say it
    assert stats["limited"].get("throttled", 0) <= PROCESSES
    print(
        f"\nsent {[r['sent'] for r in results]}, 429s {[r['pushback'] for r in results]}: {stats['limited']}"
    )
    assert stats["requests"]["GET /v3/contact_lists"] == 14 + stats["limited"].get("throttled", 0)
    engine = create_engine(store_url)
    try:
        limits = [StoreLimits(LimitStore(engine, 14), key=key, platform="constant_contact", rate=4,
                              daily=10_000, sleep=lambda s: None, name="Constant Contact")
                  for key in _keys(engine)]  # fmt: skip
        assert [limit.used() for limit in limits] == [14]
    finally:
        engine.dispose()


def test_what_one_process_learns_every_process_obeys(store_url: str) -> None:
    """Two ``StoreLimits`` of one application (as two processes would have): a 429's pause, a
    refund and the platform's "quota spent" said to one hold for the other."""
    engine = create_engine(store_url)
    slept: list[float] = []

    def limits(quota: int) -> StoreLimits:
        return StoreLimits(LimitStore(engine, quota), key="app", platform="constant_contact", rate=1000,
                           daily=10_000, sleep=slept.append, name="Constant Contact")  # fmt: skip

    one, other = limits(3), limits(3)
    try:
        one.take()
        one.acquire()
        other.pause(30)  # other got a 429
        one.take()
        assert one.acquire() > 25  # one waits for it too
        other.refund()  # that request was refused: not counted
        assert one.used() == 1
        one.take()
        one.take()
        with pytest.raises(QuotaExceeded, match=r"quota of the application \(3 requests\) is spent"):
            other.take()
        other.refund()
        assert one.used() == 2
        with pytest.raises(QuotaExceeded):  # spent until midnight, whatever the count says now
            other.take()
    finally:
        engine.dispose()


def test_the_platforms_quota_exceeded_stops_every_process(store_url: str) -> None:
    engine = create_engine(store_url)

    def make() -> StoreLimits:
        return StoreLimits(LimitStore(engine), key="app", platform="constant_contact", rate=1000,
                           daily=10_000, sleep=lambda s: None, name="Constant Contact")  # fmt: skip

    one, other = make(), make()
    try:
        one.take()
        error = other.spent()  # the platform answered quota_exceeded to other
        assert error.resets_at is not None
        assert (error.resets_at.hour, error.resets_at.minute) == (0, 0)
        with pytest.raises(QuotaExceeded):
            one.take()
    finally:
        engine.dispose()


def _keys(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT key FROM platform_limits")).scalars())
