"""SQLite locked by another process for longer than the busy timeout, mid-send: the checkpoint
that meets the lock is written again once it is free (or, if the lock outlasts that, the run ends
"failed (will retry)" and resumes): never a lost checkpoint, nothing lost, the list exact.

The worker's busy timeout is 0.5 s here (30 s in production) so that the lock, held for 3 s by
another process (``BEGIN EXCLUSIVE``), outlasts it six times over without the test taking minutes.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

import pytest

from exports.world import World
from segmentsync.db import create_engine, session_factory, sqlite_file
from segmentsync.exports.models import RunStatus
from segmentsync.runtime import Runtime
from segmentsync.scheduling.worker import Worker

from .scenario import (
    FINAL,
    ON_SQLITE,
    count_received,
    counts_add_up,
    drive,
    load_run,
    make_export,
    platform_list,
    profile_emails,
    received,
    start_run,
    until,
    write_profiles,
)

PROFILES = 20_000
BATCH_ROWS = 200
BUSY_MS = 500
LOCKED_SECONDS = 3.0
HOLD = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("ROLLBACK")
"""


@ON_SQLITE
def test_sqlite_locked_past_the_busy_timeout_loses_no_checkpoint(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="segmentsync.engine")
    runtime = world.runtime
    runtime.settings.max_batch_rows = BATCH_ROWS
    write_profiles(runtime, PROFILES)
    world.sandbox.cm_faults(latency_ms=100)  # the run lasts seconds
    export_id = make_export(world, "campaign_monitor")
    count_received(world, "campaign_monitor")
    engine = create_engine(runtime.settings.resolved_database_url, sqlite_busy_ms=BUSY_MS)
    impatient = Runtime(
        settings=runtime.settings,
        engine=engine,
        sessions=session_factory(engine),
        readers=session_factory(engine, read_only=True),
    )
    path = sqlite_file(engine.url)
    assert path is not None
    run_id = start_run(world, export_id)
    worker = threading.Thread(target=Worker(impatient).run_once, name="worker")
    worker.start()
    try:
        until("the first checkpoints", lambda: load_run(runtime, run_id).batches_done >= 2)
        before = load_run(runtime, run_id).batches_done
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path), str(LOCKED_SECONDS)], stdout=subprocess.PIPE, text=True
        )
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        locked_at = load_run(runtime, run_id).batches_done  # reads go on (WAL)
        assert holder.wait(timeout=60) == 0
        worker.join(timeout=120)
        assert not worker.is_alive()
    finally:
        engine.dispose()
    said = [r.getMessage() for r in caplog.records]
    assert any("checkpoint failed (database is locked); writing it again" in text for text in said), said
    run = load_run(runtime, run_id)
    assert run.batches_done >= locked_at >= before  # no checkpoint lost
    if run.status not in FINAL:  # the lock outlasted the checkpoint's tries: resumable
        assert (run.status, run.error_code) == (RunStatus.FAILED_RETRY, "store_unavailable"), run.error
        run, _ = drive(runtime, run_id)
    assert run.status is RunStatus.SUCCEEDED, run.error
    counts_add_up(run)
    assert platform_list(world, "campaign_monitor") == profile_emails(runtime)
    got = received(world, "campaign_monitor")
    print(f"\nreceived: {got.times}")
    assert got.most_times == 1  # the checkpoint was written again: nothing was sent twice
