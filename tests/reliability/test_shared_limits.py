"""One platform, many workers: three `segmentsync worker` processes export at once to one Constant
Contact application and one Campaign Monitor client, with the sandbox's rate limits on; then
three workers spend a small daily quota of the one application together.

Constant Contact's 4 requests/s and daily quota are the application's, shared by the workers
through the metadata store (``destinations/shared_limits.py``); Campaign Monitor's
``X-RateLimit-*`` headers are followed by each worker's threads (``ratelimit.HeaderPacer``). A 429
is logged by the worker that got it, so each worker's 429s are counted from its log.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from exports.world import World, cc_list, cm_list  # tests/ is on sys.path (rootdir)
from segmentsync.exports.models import RunStatus

from .processes import WorkerProcess, worker_env
from .scenario import (
    FINAL,
    counts_add_up,
    load_run,
    make_export,
    profile_emails,
    start_run,
    wait_for,
    write_profiles,
)

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # 40-60 s per store on a loaded machine
WORKERS = 3
BATCH_ROWS = 10  # 4 batches per run of 40 profiles: enough requests that the workers contend
CM_LIMIT, CM_WINDOW = 5, 1.0  # requests per window per API key
CC_RATE = 4  # requests per second per application (the platform's own)
RATE_LIMITED = re.compile(r"(Campaign Monitor|Constant Contact): rate limited \(HTTP 429")


def _lists(world: World) -> tuple[list[str], list[str]]:
    """Three lists on each platform (the world has two), in the one client / account."""
    cm = [world.cm.list_id, world.cm.other_list_id, cm_list(world.sandbox, world.cm.credentials, "CM third")]
    cc = [world.cc.list_id, world.cc.other_list_id, cc_list(world.sandbox, world.cc.credentials, "CC third")]
    return cm, cc


def _members(world: World, platform: str, list_id: str) -> set[str]:
    if platform == "campaign_monitor":
        url = f"{world.sandbox.campaign_monitor_url}/_sandbox/lists/{list_id}/subscribers?state=Active"
        return {row["EmailAddress"].lower() for row in httpx.get(url, timeout=60).json()}
    url = f"{world.sandbox.constant_contact_url}/_sandbox/lists/{list_id}/members"
    rows = httpx.get(url, timeout=60).json()["members"]
    return {row["email"].lower() for row in rows if row["permission_to_send"] != "unsubscribed"}


def _rate_limited(worker: WorkerProcess) -> dict[str, int]:
    """429s this worker got, per platform (from its log)."""
    found: dict[str, int] = {}
    for match in RATE_LIMITED.finditer(worker.log_path.read_text(errors="replace")):
        found[match.group(1)] = found.get(match.group(1), 0) + 1
    return found


def test_three_workers_share_one_application_and_one_client(world: World, tmp_path: Path) -> None:
    cm_lists, cc_lists = _lists(world)
    world.sandbox.cc_faults(requests_per_second=CC_RATE)
    world.sandbox.cm_faults(rate_limit=CM_LIMIT, rate_limit_window_seconds=CM_WINDOW)
    exports = [
        (platform, list_id, make_export(world, platform, name=f"{platform} {n}", list_id=list_id))
        for platform, lists in (("campaign_monitor", cm_lists), ("constant_contact", cc_lists))
        for n, list_id in enumerate(lists)
    ]
    env = worker_env(
        world.runtime.settings, world.runtime.settings.resolved_database_url,
        SEGMENTSYNC_MAX_BATCH_ROWS=str(BATCH_ROWS),
    )  # fmt: skip
    workers = [WorkerProcess(env, tmp_path / f"worker{n}.log") for n in range(WORKERS)]
    runs = [start_run(world, export_id) for _, _, export_id in exports]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    try:
        finished = [wait_for(world.runtime, run_id, FINAL, timeout=240) for run_id in runs]
    finally:
        for worker in workers:
            worker.stop()
    elapsed = time.monotonic() - started
    assert [run.status for run in finished] == [RunStatus.SUCCEEDED] * len(runs), [
        (run.status, run.error) for run in finished
    ]
    segment = profile_emails(world.runtime)
    for (platform, list_id, _), run_id in zip(exports, runs, strict=True):
        assert _members(world, platform, list_id) == segment, (platform, list_id)
        counts_add_up(load_run(world.runtime, run_id))
    # 429s: Campaign Monitor at most one per worker per window. Constant Contact at most one per
    # worker in all: the workers share one bucket at the platform's rate (each with its own bucket,
    # as before, they got 4 and 7 of 45 requests refused, 11 in all).
    limited = [_rate_limited(worker) for worker in workers]
    cm_windows = math.ceil(elapsed / CM_WINDOW) + 1
    for counts, worker in zip(limited, workers, strict=True):
        assert counts.get("Campaign Monitor", 0) <= cm_windows, (counts, worker.tail())
        assert counts.get("Constant Contact", 0) <= 1, (counts, worker.tail())
    stats = httpx.get(f"{world.sandbox.constant_contact_url}/_sandbox/stats", timeout=30).json()
    assert stats["limited"].get("throttled", 0) == sum(c.get("Constant Contact", 0) for c in limited)
    print(f"\n{elapsed:.1f} s; 429s per worker: {limited}; CC stats {stats}")


QUOTA = 15  # requests the application has left today: far fewer than any one run needs
QUOTA_PROFILES = 200  # 20 imports of 10 rows per run: no run can finish within the quota


def _cc_stats(world: World) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(
        f"{world.sandbox.constant_contact_url}/_sandbox/stats", timeout=30
    ).json()
    return stats


def _counted_by_us(world: World) -> int:
    """Requests our shared limits counted today for every application (the store's clock)."""
    with world.runtime.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT day, used FROM platform_limits")).all()
    today = datetime.now(UTC).date().isoformat()
    return sum(used for day, used in rows if day == today)


def test_three_workers_spend_the_daily_quota_together_then_all_stop(world: World, tmp_path: Path) -> None:
    """The application has ``QUOTA`` requests left today, on the platform and in our count. Three
    worker processes export three lists at once: together they send exactly ``QUOTA`` requests,
    the platform refuses none, and every run stops with ``quota_exceeded`` until 00:00 UTC."""
    write_profiles(world.runtime, QUOTA_PROFILES)
    exports = [
        make_export(world, "constant_contact", name=f"quota {n}", list_id=list_id)
        for n, list_id in enumerate(_lists(world)[1])
    ]
    # what the world's lists and the exports' checks used (not all of it counted by us)
    client_id = world.cc.credentials["client_id"]
    platform_before = _cc_stats(world)["today"].get(client_id, 0)
    ours_before = _counted_by_us(world)
    world.sandbox.cc_faults(requests_per_second=CC_RATE, daily_quota=platform_before + QUOTA)
    env = worker_env(
        world.runtime.settings, world.runtime.settings.resolved_database_url,
        SEGMENTSYNC_MAX_BATCH_ROWS=str(BATCH_ROWS),
        SEGMENTSYNC_CONSTANT_CONTACT_DAILY_QUOTA=str(ours_before + QUOTA),
    )  # fmt: skip
    workers = [WorkerProcess(env, tmp_path / f"quota{n}.log") for n in range(WORKERS)]
    runs = [start_run(world, export_id) for export_id in exports]
    stopped = FINAL | {RunStatus.FAILED_RETRY}
    for worker in workers:
        worker.start()
    try:
        ended = [wait_for(world.runtime, run_id, stopped, timeout=180) for run_id in runs]
        stats = _cc_stats(world)
    finally:
        for worker in workers:
            worker.stop()
    midnight = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC)
    for run in ended:
        assert (run.status, run.error_code) == (RunStatus.FAILED_RETRY, "quota_exceeded"), run.error
        assert run.next_attempt_at == midnight, run.next_attempt_at  # not before the quota resets
    sent = stats["today"][client_id] - platform_before
    limited = stats["limited"]
    claimed = [len(re.findall(r"claimed run", worker.log_text())) for worker in workers]
    print(
        f"\nbefore: platform {platform_before}, ours {ours_before}; sent {sent} of the quota {QUOTA}; "
        f"platform refusals {limited}; runs claimed per worker {claimed}"
    )
    assert sent == QUOTA  # exactly the quota, together
    assert limited.get("quota_exceeded", 0) == 0  # the platform never had to refuse one for the quota
    assert limited.get("throttled", 0) <= WORKERS
    assert _counted_by_us(world) == ours_before + QUOTA
    assert _cc_stats(world)["today"][client_id] - platform_before == QUOTA  # nobody sent after the stop
