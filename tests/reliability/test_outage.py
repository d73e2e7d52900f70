"""A run with the platform down mid-run (every request dropped): the run waits and resumes, or
ends "failed (will retry)" and a later attempt completes. Never "succeeded" with members missing.

The normal suite has short outages (seconds, with short retries); the slow test is the literal
one: two minutes, the production timeouts and retries, a real worker loop and real waiting.
"""

from __future__ import annotations

import threading
import time

import pytest

from exports.world import World, faults, outage_after
from segmentsync.connections.destination import destination_for
from segmentsync.connections.models import Connection
from segmentsync.destinations.base import Destination
from segmentsync.destinations.policy import RetryPolicy, Tuning
from segmentsync.exports.models import Run, RunStatus
from segmentsync.runtime import Runtime
from segmentsync.scheduling.worker import Worker

from .scenario import (
    FAST,
    FINAL,
    ON_SQLITE,
    PLATFORMS,
    counts_add_up,
    load_run,
    make_due,
    make_export,
    platform_list,
    profile_emails,
    start_run,
    write_profiles,
)

PROFILES = 10_000
BATCH_ROWS = {"campaign_monitor": 200, "constant_contact": 1_000}  # many checkpoints
# Gives up on a request after three quick tries: a short outage outlasts it.
IMPATIENT = Tuning(
    timeout=FAST.timeout,
    retry=RetryPolicy(attempts=3, timeout=10, wait_initial=0.05, wait_max=0.1, wait_jitter=0.01),
    poll_initial=0.02,
    poll_max=0.2,
    requests_per_second=20,
)


def _never_short(world: World, platform: str, run: Run) -> None:
    if run.status is RunStatus.SUCCEEDED:
        counts_add_up(run)
        assert platform_list(world, platform) == profile_emails(world.runtime), (
            "succeeded with members missing"
        )


def _prepare(world: World, platform: str) -> int:
    write_profiles(world.runtime, PROFILES)
    world.runtime.settings.max_batch_rows = BATCH_ROWS[platform]
    return start_run(world, make_export(world, platform))


def worker(world: World, tuning: Tuning) -> Worker:
    """An in-process worker whose destinations use ``tuning`` (timeouts and retries)."""

    def factory(runtime: Runtime, connection: Connection) -> Destination:
        return destination_for(runtime=runtime, connection=connection, tuning=tuning)

    return Worker(world.runtime, destination_factory=factory)


@ON_SQLITE  # the store plays no part in waiting for a platform
@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_short_outage_is_waited_out_within_the_run(world: World, platform: str) -> None:
    run_id = _prepare(world, platform)
    outage_after(world, platform, imports=3, seconds=2)
    assert worker(world, FAST).run_once() == run_id
    run = load_run(world.runtime, run_id)
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert faults(world, platform)["injected"].get("outage", 0) > 0
    _never_short(world, platform, run)
    assert (run.attempt, run.new) == (0, PROFILES)


@ON_SQLITE
@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_outage_longer_than_the_retries_fails_for_now_and_the_next_attempt_completes(
    world: World, platform: str
) -> None:
    run_id = _prepare(world, platform)
    seconds = 3.0
    outage_after(world, platform, imports=3, seconds=seconds)
    assert worker(world, IMPATIENT).run_once() == run_id
    first = load_run(world.runtime, run_id)
    assert first.status is RunStatus.FAILED_RETRY, (first.status, first.error)
    assert "will retry" in (first.error or "")
    assert 3 <= first.batches_done < first.batches_total  # kept what was acknowledged
    time.sleep(seconds)  # the platform is back
    make_due(world.runtime, run_id)
    assert worker(world, IMPATIENT).run_once() == run_id
    second = load_run(world.runtime, run_id)
    assert second.status is RunStatus.SUCCEEDED, second.error
    _never_short(world, platform, second)
    assert second.new + second.updated == PROFILES


@pytest.mark.slow
@pytest.mark.timeout(900)
@ON_SQLITE
def test_two_minutes_without_the_platform_with_production_retries(world: World) -> None:
    """The literal case: production timeouts and retries, a worker loop, real time."""
    platform = "campaign_monitor"
    run_id = _prepare(world, platform)
    shutdown = threading.Event()
    loop = threading.Thread(target=Worker(world.runtime, poll_seconds=0.5).run_forever, args=(shutdown,))
    seen: list[RunStatus] = []
    outage_after(world, platform, imports=3, seconds=120)
    loop.start()
    try:
        deadline = time.monotonic() + 600
        while (run := load_run(world.runtime, run_id)).status not in FINAL:
            if not seen or seen[-1] is not run.status:
                seen.append(run.status)
            assert time.monotonic() < deadline, seen
            time.sleep(0.5)
    finally:
        shutdown.set()
        loop.join()
    assert run.status is RunStatus.SUCCEEDED, (run.error, seen)
    _never_short(world, platform, run)
    assert RunStatus.FAILED_RETRY in seen or run.attempt == 0, seen
    print(
        f"statuses seen: {[s.value for s in seen]}; attempts {run.attempt}; {run.started_at} → {run.finished_at}"
    )
