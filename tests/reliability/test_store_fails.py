"""The metadata store fails mid-run: PostgreSQL connections of the worker are terminated
(``pg_terminate_backend``) again and again, during snapshot, plan and send. The run finishes, or
fails "will retry" and a later attempt completes from its checkpoint: the list equals the
segment, nobody arrives more often than the batches in flight allow, the counts add up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest
import sqlalchemy as sa

from exports.world import World
from segmentsync.connections.models import Connection
from segmentsync.db import create_engine, transaction
from segmentsync.destinations.base import Destination
from segmentsync.engine.checkpoint import Checkpoints, CheckpointsLost, confirm
from segmentsync.engine.lease import LeaseLost
from segmentsync.exports.models import Run, RunStatus
from segmentsync.runtime import Runtime
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
EVERY = 0.3  # seconds between two rounds of terminations by the clock (snapshot, plan, send)
ROUNDS = 6  # rounds that terminated something; then the store is left alone
AT_BATCHES = frozenset({2, 9, 17})  # and a round as these batches go out: mid-send whatever the speed


class TerminatingAtBatches:
    """The real destination; as the batches numbered in ``AT_BATCHES`` go out (counted over all
    attempts), ``terminate`` runs first. A run on a fast machine ends before a clock-driven round
    (CI once saw none at all), so these rounds make "terminated mid-send" certain."""

    def __init__(self, destination: Destination, terminate: Callable[[], None], sent: list[int]):
        self._destination = destination
        self._terminate = terminate
        self._sent = sent

    def __getattr__(self, name: str) -> Any:
        return getattr(self._destination, name)

    def _batch(self) -> None:
        self._sent.append(1)
        if len(self._sent) in AT_BATCHES:
            self._terminate()

    def upsert(self, *args: Any, **kwargs: Any) -> Any:
        self._batch()
        return self._destination.upsert(*args, **kwargs)

    def upsert_rows(self, *args: Any, **kwargs: Any) -> Any:
        self._batch()
        return self._destination.upsert_rows(*args, **kwargs)


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

    at_batches: list[int] = []  # rounds run as a batch went out
    sent: list[int] = []

    def terminate_once() -> int:
        with quiet, killer.connect() as connection:
            killed: int = connection.execute(
                sa.text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            ).scalar_one()
        return killed

    def terminate() -> None:
        while not done.wait(EVERY) and sum(1 for k in terminated if k) < ROUNDS:
            terminated.append(terminate_once())

    def terminate_at_batch() -> None:
        """Terminate the worker's connections as this batch goes out. Right after a clock round the
        worker may hold none (its pool's are dead until the next checkout; CI once saw [0, 0, 0]):
        then wait for it to connect again — a checkpoint of another batch, its lease heartbeat."""
        deadline = time.monotonic() + 30
        killed = terminate_once()
        while not killed and time.monotonic() < deadline and not done.wait(0.05):
            killed = terminate_once()
        at_batches.append(killed)

    def destination(runtime: Runtime, connection: Connection) -> Destination:
        return cast(
            Destination, TerminatingAtBatches(fast_destination(runtime, connection), terminate_at_batch, sent)
        )

    thread = threading.Thread(target=terminate, name="terminator", daemon=True)
    thread.start()
    run_id = start_run(world, export_id)
    worker = Worker(runtime, destination_factory=destination)
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
    print(
        f"\nterminated {sum(terminated)} connections in {len(terminated)} rounds by the clock and "
        f"{sum(at_batches)} in {len(at_batches)} as batches went out; attempts: {seen}"
    )
    assert run.status is RunStatus.SUCCEEDED, (run.error, seen)
    assert len(at_batches) >= 2, at_batches  # rounds ran as batches went out, whatever the speed
    assert all(at_batches), at_batches  # and each time the worker lost connections mid-send
    counts_add_up(run)
    assert platform_list(world, "campaign_monitor") == profile_emails(runtime)
    got = received(world, "campaign_monitor")
    # an interrupted attempt resends at most the batches that were in flight (16 at most)
    print(f"received: {got.times}")
    twice = sum(count for times, count in got.times.items() if times > 1)
    assert twice <= len(seen) * 16 * BATCH_ROWS, got.times


def test_a_checkpoint_the_store_forgot_is_found_by_the_next_one(world: World) -> None:
    """A crashed PostgreSQL forgets checkpoints it acknowledged (they commit without waiting for the
    flush; ``test_store_restart.py`` meets it for real). The next checkpoint (here: the confirming
    one) commits only on the progress the previous one left: fewer batches in the store end the
    attempt (``CheckpointsLost``, resumed from what was kept); another owner is a lost lease."""
    runtime = world.runtime
    run_id = start_run(world, make_export(world, "campaign_monitor"))
    with transaction(runtime.sessions) as session:
        session.execute(
            sa.update(Run)
            .where(Run.id == run_id)
            .values(status=RunStatus.RUNNING, lease_owner="w", batches_done=5)
        )
    job = Checkpoints(
        sessions=runtime.sessions, run_id=run_id, export_id=load_run(runtime, run_id).export_id,
        lease_owner="w", from_feed=False,
    )  # fmt: skip
    confirm(job, 5)  # what the store holds: confirmed
    with pytest.raises(CheckpointsLost, match=r"lost the checkpoints of 2 acknowledged batch"):
        confirm(job, 7)  # the worker had recorded 7, the store kept 5
    with transaction(runtime.sessions) as session:
        session.execute(sa.update(Run).where(Run.id == run_id).values(lease_owner="other"))
    with pytest.raises(LeaseLost):
        confirm(job, 5)
