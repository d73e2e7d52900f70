"""Limits that one platform sets for many senders: Constant Contact's unsubscribed lookup (once
per batch), Campaign Monitor's ``X-RateLimit-*`` headers obeyed by every thread, and Constant
Contact's per-application rate and daily quota shared through the metadata store."""

from __future__ import annotations

from segmentsync.destinations.base import Member
from segmentsync.outcomes import Outcome
from segmentsync.sandbox.launcher import Sandbox

from .platforms import CampaignMonitor, ConstantContact

UNSUBSCRIBED_LOOKUP = "GET /v3/contacts"


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
    """Eight removal threads against 3 requests per window: no request leaves after an answer
    that said ``Remaining: 0`` before the reset, so none is refused."""
    platform = CampaignMonitor(sandbox)
    list_id = platform.new_list("Paced")
    emails = [f"r{i}@example.com" for i in range(9)]
    platform.faults(rate_limit=3, rate_limit_window_seconds=1)
    destination = platform.destination()
    destination.custom_fields(list_id)  # the first answer tells the window
    results = destination.remove(list_id, emails)
    destination.close()
    assert {r.outcome for r in results} == {Outcome.REMOVED}
    assert destination.pushback() == 0  # no 429 (nor anything else that asked us to slow down)
    assert platform.stats()["requests"]["DELETE /api/v3.3/subscribers/{listid}.json"] == len(emails)
