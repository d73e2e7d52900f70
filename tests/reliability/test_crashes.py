"""Resumable runs: kill -9 the worker at random moments of a 200,000-profile export; after
every restart the run resumes from its checkpoint and ends with the platform's list equal to the
segment. Workers are real `segmentsync worker` processes configured by environment."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from exports.world import World, outage_after, outage_over
from segmentsync.destinations.campaign_monitor import CampaignMonitor
from segmentsync.exports.models import Run, RunPhase, RunStatus

from .processes import WorkerProcess, worker_env
from .scenario import (
    FINAL,
    ON_POSTGRESQL,
    ON_SQLITE,
    count_received,
    counts_add_up,
    load_run,
    make_export,
    platform_list,
    profile_emails,
    received,
    start_run,
    wait_for,
    write_profiles,
)

PROFILES = 200_000
KILLS = 10
BEFORE_SEND = 3  # of the kills, how many strike before the send phase (snapshot, plan)
POLL = 0.05
PLATFORM = "campaign_monitor"
IN_FLIGHT = CampaignMonitor.limits.max_concurrency or CampaignMonitor.limits.concurrency


@dataclass(frozen=True)
class Moment:
    """When to strike: ``delay`` seconds after a worker claims the run (or as soon as the send phase
    starts, if that comes first), or (in the send phase) once ``share`` of the batches are done."""

    delay: float | None = None
    share: float | None = None


def moments(rng: random.Random) -> list[Moment]:
    early = [Moment(delay=rng.uniform(0.0, 3.0)) for _ in range(BEFORE_SEND)]
    shares = sorted(rng.uniform(0.02, 0.97) for _ in range(KILLS - BEFORE_SEND))  # never the last batch
    return early + [Moment(share=share) for share in shares]


def _holder(run: Run, workers: list[WorkerProcess]) -> WorkerProcess | None:
    """The live worker whose lease the run is under (the worker name holds its pid)."""
    if run.status is not RunStatus.RUNNING or run.lease_owner is None:
        return None
    for worker in workers:
        alive = worker.process is not None and worker.process.poll() is None
        if alive and f":{worker.pid}:" in run.lease_owner:
            return worker
    return None


def _strike(world: World, run_id: int, workers: list[WorkerProcess], moment: Moment) -> Run:
    """Wait for a live worker to hold the run, then for the moment; kill it; return the run then."""
    deadline = time.monotonic() + 120
    while (holder := _holder(run := load_run(world.runtime, run_id), workers)) is None:
        assert run.status not in FINAL, f"the run ended ({run.status.value}) before kill {moment}"
        assert time.monotonic() < deadline, "no worker claimed the run:\n" + workers[0].tail()
        time.sleep(POLL)
    if moment.delay is not None:
        # the engine may reach the send phase well within the delay; strike no later than that, so an
        # early kill never lands after the whole run has finished
        until = time.monotonic() + moment.delay
        while time.monotonic() < until and run.phase is not RunPhase.SEND:
            time.sleep(min(POLL, max(0.0, until - time.monotonic())))
            run = load_run(world.runtime, run_id)
            assert run.status is RunStatus.RUNNING, f"the run ended ({run.status.value}) before {moment}"
    else:
        assert moment.share is not None
        # The holder has just claimed the run and sends nothing yet. The sandbox lets through the
        # imports this moment needs (one more than it needs), then answers none until the kill: the
        # run cannot end before it, however fast it sends or however late this loop looks.
        batches = run.batches_total or math.ceil(PROFILES / 1000)
        outage_after(
            world, PLATFORM, imports=max(1, math.ceil(moment.share * batches) - run.batches_done + 1)
        )
        while run.batches_total == 0 or run.batches_done < moment.share * run.batches_total:
            assert run.status is RunStatus.RUNNING, f"the run ended ({run.status.value}) before {moment}"
            time.sleep(POLL)
            run = load_run(world.runtime, run_id)
    holder.kill()
    outage_over(world, PLATFORM)  # (nothing to end after an early kill)
    return load_run(world.runtime, run_id)


def _crash_and_resume(world: World, tmp_path: Path, workers: int, seed: int) -> None:
    platform = PLATFORM
    write_profiles(world.runtime, PROFILES)
    export_id = make_export(world, platform)
    count_received(world, platform)
    env = worker_env(world.runtime.settings, world.runtime.settings.resolved_database_url)
    pool = [WorkerProcess(env, tmp_path / f"worker{n}.log") for n in range(workers)]
    for worker in pool:
        worker.start()
    run_id = start_run(world, export_id)
    rng = random.Random(seed)
    progress: list[tuple[str, int]] = []
    try:
        for moment in moments(rng):
            at_kill = _strike(world, run_id, pool, moment)
            progress.append((at_kill.phase.value if at_kill.phase else "-", at_kill.batches_done))
            for worker in pool:
                if worker.process is None or worker.process.poll() is not None:
                    worker.start()  # the dead one comes back; the other (if any) may take over first
        run = wait_for(world.runtime, run_id, FINAL, timeout=300)
    finally:
        for worker in pool:
            worker.stop()
    assert sum(worker.kills for worker in pool) == KILLS
    assert run.status is RunStatus.SUCCEEDED, (run.error, progress, pool[0].tail())
    # resumed from checkpoints: progress never went back, and the send phase was never redone
    sent = [done for _, done in progress]
    assert sent == sorted(sent), progress
    assert {phase for phase, _ in progress} & {RunPhase.SEND.value}, progress
    assert platform_list(world, platform) == profile_emails(world.runtime)
    counts_add_up(run)
    assert (run.profiles, run.new + run.updated) == (PROFILES, PROFILES)
    seen = received(world, platform)
    assert seen.addresses == PROFILES
    # only the batches in flight at a kill (the sender's window: at most IN_FLIGHT of 1,000 rows) may
    # arrive again
    again = sum(count for times, count in seen.times.items() if times > 1)
    assert again <= KILLS * IN_FLIGHT * 1000, (seen.times, progress)
    print(f"kills at (phase, batches done): {progress}; received: {seen.times}")


@pytest.mark.slow
@pytest.mark.timeout(900)
@ON_SQLITE  # one worker on the embedded default store
def test_kill_9_the_worker_ten_times_and_the_run_still_delivers_the_exact_list(
    world: World, tmp_path: Path
) -> None:
    _crash_and_resume(world, tmp_path, workers=1, seed=random.randrange(1 << 30))


@pytest.mark.slow
@pytest.mark.timeout(900)
@ON_POSTGRESQL  # several workers need PostgreSQL
def test_two_workers_on_postgresql_one_killed_the_other_takes_over(world: World, tmp_path: Path) -> None:
    _crash_and_resume(world, tmp_path, workers=2, seed=random.randrange(1 << 30))
