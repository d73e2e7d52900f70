"""PostgreSQL restarted mid-send: a server the test owns (``own_postgres.py``) is restarted with
``pg_ctl restart -m fast`` (sessions terminated, a clean shutdown) and then ``-m immediate`` (every
process killed, crash recovery on start) while a real ``segmentsync worker`` process sends a
Campaign Monitor run. Each time the server refuses connections until it is back. The run goes on
(or is resumed from its checkpoint), the list equals the segment, nobody arrives more often than
the batches in flight allow, the counts add up."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from exports.world import World
from segmentsync.exports.models import Run, RunStatus

from .own_postgres import OwnPostgres
from .processes import WorkerProcess, worker_env
from .scenario import (
    FINAL,
    count_received,
    counts_add_up,
    load_run,
    make_export,
    platform_list,
    profile_emails,
    received,
    start_run,
    until,
    wait_for,
    write_profiles,
)

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]
PROFILES = 20_000
BATCH_ROWS = 100
WINDOW = 16  # Campaign Monitor's most batches in flight
BACKLOG = 32  # acknowledged batches that may wait for their checkpoint (checkpoint.RECORD_BACKLOG)
RESTARTS = (("fast", 5), ("immediate", 60))  # mode, after how many batches were checkpointed


@pytest.fixture
def store_url(own_server: OwnPostgres) -> str:
    return own_server.empty_store()


def test_postgresql_restarted_mid_send_loses_nothing(
    world: World, own_server: OwnPostgres, tmp_path: Path
) -> None:
    runtime = world.runtime
    write_profiles(runtime, PROFILES)
    world.sandbox.cm_faults(latency_ms=200)  # 200 batches: the run lasts seconds
    export_id = make_export(world, "campaign_monitor")
    count_received(world, "campaign_monitor")
    env = worker_env(
        runtime.settings, own_server.url(),
        SEGMENTSYNC_MAX_BATCH_ROWS=str(BATCH_ROWS), SEGMENTSYNC_WORKER_LEASE_SECONDS="60",  # the default
    )  # fmt: skip
    worker = WorkerProcess(env, tmp_path / "worker.log")
    run_id = start_run(world, export_id)
    worker.start()
    measured: list[str] = []

    def run() -> Run:
        return load_run(runtime, run_id)

    try:
        for mode, at in RESTARTS:
            until(
                f"{at} batches checkpointed", lambda at=at: run().batches_done >= at or run().status in FINAL
            )
            before = run()
            assert before.status is RunStatus.RUNNING, (before.status, before.error)  # mid-send
            seconds = own_server.restart(mode)
            back = time.monotonic()
            after = run().batches_done
            until(
                "a checkpoint after the restart",
                lambda after=after: run().batches_done > after or run().status is not RunStatus.RUNNING,
                timeout=120,
            )
            measured.append(
                f"-m {mode} at {before.batches_done} batches: down {seconds:.1f} s, next checkpoint "
                f"{time.monotonic() - back:.1f} s after it was back ({run().status.value})"
            )
        final = wait_for(runtime, run_id, FINAL, timeout=120)
    finally:
        worker.stop()
    got = received(world, "campaign_monitor")
    log = worker.log_text()
    print(f"\n{'; '.join(measured)}; received {got.times}; attempt {final.attempt}")
    print(
        "\n".join(line for line in log.splitlines() if "checkpoint failed" in line or "store failed" in line)[
            :2000
        ]
    )
    assert final.status is RunStatus.SUCCEEDED, (final.error, worker.tail())
    counts_add_up(final)
    assert final.new + final.updated == PROFILES
    assert platform_list(world, "campaign_monitor") == profile_emails(runtime)
    # A fast restart is ridden through (the checkpoint that met it is written again). A crash forgets
    # the checkpoints not yet flushed: the attempt ends and the next resends them, with the batches
    # in flight and those waiting for their checkpoint.
    twice = sum(count for times, count in got.times.items() if times > 1)
    assert twice <= (WINDOW + 2 * BACKLOG) * BATCH_ROWS, got.times
    assert got.most_times <= 2, got.most
