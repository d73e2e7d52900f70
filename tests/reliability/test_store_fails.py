"""The metadata store fails mid-run: PostgreSQL connections of the worker are terminated
(``pg_terminate_backend``) again and again, during snapshot, plan and send. The run finishes, or
fails "will retry" and a later attempt completes from its checkpoint: the list equals the
segment, nobody arrives more often than the batches in flight allow, the counts add up."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from exports.world import World
from segmentsync.db import create_engine
from segmentsync.exports.models import RunStatus
from segmentsync.scheduling.worker import Worker

from .scenario import (
    FINAL,
    ON_POSTGRESQL,
    count_received,
    counts_add_up,
    fast_destination,
    load_run,
    make_due,
    make_export,
    platform_list,
    profile_emails,
    received,
    start_run,
    write_profiles,
)

PROFILES = 20_000
BATCH_ROWS = 500
EVERY = 0.8  # seconds between two rounds of terminations
ROUNDS = 6  # rounds that terminated something; then the store is left alone


@ON_POSTGRESQL
def test_terminated_connections_mid_run_lose_nothing(world: World) -> None:
    runtime = world.runtime
    write_profiles(runtime, PROFILES)
    runtime.settings.max_batch_rows = BATCH_ROWS
    export_id = make_export(world, "campaign_monitor")
    count_received(world, "campaign_monitor")
    database = runtime.engine.url.database
    killer = create_engine(
        runtime.engine.url.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    done = threading.Event()
    terminated: list[int] = []
    quiet = threading.Lock()  # held by the test's own reads and writes: no termination meanwhile

    def terminate() -> None:
        while not done.wait(EVERY) and sum(1 for k in terminated if k) < ROUNDS:
            with quiet, killer.connect() as connection:
                killed = connection.execute(
                    sa.text(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                ).scalar_one()
            terminated.append(killed)

    thread = threading.Thread(target=terminate, name="terminator", daemon=True)
    thread.start()
    run_id = start_run(world, export_id)
    worker = Worker(runtime, destination_factory=fast_destination)
    seen: list[str] = []
    try:
        for _ in range(30):  # as Worker.run_forever: a failure of the store is logged, then claim again
            try:
                worker.run_once()
            except sa.exc.OperationalError as exc:
                seen.append(type(exc.orig).__name__)
            with quiet:
                run = load_run(runtime, run_id)
                if run.status in FINAL:
                    break
                seen.append(run.status.value)
                make_due(runtime, run_id)
    finally:
        done.set()
        thread.join()
        killer.dispose()
    print(f"\nterminated {sum(terminated)} connections in {len(terminated)} rounds; attempts: {seen}")
    assert run.status is RunStatus.SUCCEEDED, (run.error, seen)
    assert sum(terminated) > 0
    counts_add_up(run)
    assert platform_list(world, "campaign_monitor") == profile_emails(runtime)
    got = received(world, "campaign_monitor")
    # an interrupted attempt resends at most the batches that were in flight (16 at most)
    print(f"received: {got.times}")
    twice = sum(count for times, count in got.times.items() if times > 1)
    assert twice <= len(seen) * 16 * BATCH_ROWS, got.times
