"""The live progress between checkpoints: the rows a platform reports done in batches still in
flight are stored on the run (fenced by the lease) and counted by ``runs.progress``, which never
shows a total exceeded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from reliability.scenario import load_run  # tests/ is on sys.path (rootdir)
from segmentsync.db import transaction
from segmentsync.destinations import progress
from segmentsync.engine.in_flight import KEY, InFlight
from segmentsync.exports import runs
from segmentsync.exports.models import Run, RunPhase, RunStatus, Trigger
from segmentsync.runtime import Runtime

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _run(runtime: Runtime, **values: object) -> int:
    with transaction(runtime.sessions) as session:
        defaults: dict[str, object] = {
            "export_name": "E", "trigger": Trigger.ON_DEMAND, "status": RunStatus.RUNNING, "phase": RunPhase.SEND,
            "lease_owner": "worker-a", "rows_to_send": 100_000, "batches_total": 3, "plan": {"new": 100_000},
            "send_started_at": NOW - timedelta(seconds=10),
        }  # fmt: skip
        run = Run(**{**defaults, **values})
        session.add(run)
        session.flush()
        return run.id


def test_rows_reported_in_flight_move_the_progress_until_their_batch_ends(runtime: Runtime) -> None:
    run_id = _run(runtime)
    ticks = iter(range(0, 1000, 5))  # every report comes 5 s after the last: none is held back
    in_flight = InFlight(runtime.sessions, run_id, "worker-a", clock=lambda: float(next(ticks)))
    with in_flight.batch():
        progress.report("activity", 12_000)
        with in_flight.batch():  # a second batch in flight at the same time
            progress.report("activity", 8_000)
            stored = load_run(runtime, run_id)
            assert stored.plan == {"new": 100_000, KEY: 20_000}  # the plan itself is kept
            moving = runs.progress(stored, NOW)
            assert moving["percent"] == 20.0
            assert moving["rows_per_second"] == 2000.0
            assert moving["eta_seconds"] == 40.0
        assert (load_run(runtime, run_id).plan or {})[KEY] == 12_000  # the ended batch is checkpointed
    assert (load_run(runtime, run_id).plan or {})[KEY] == 0
    other = InFlight(runtime.sessions, run_id, "worker-b", clock=lambda: float(next(ticks)))
    with other.batch():
        progress.report("activity", 50_000)  # a worker that lost the lease writes nothing
    assert (load_run(runtime, run_id).plan or {})[KEY] == 0


def test_no_total_is_exceeded(runtime: Runtime) -> None:
    run_id = _run(runtime, batches_done=3, rows_sent=90_000, plan={KEY: 40_000})
    running = runs.progress(load_run(runtime, run_id), NOW)
    assert running["batches_total"] == 4  # one more than estimated: the destination split a batch
    assert running["percent"] == 100.0  # 90,000 sent + 40,000 reported, of 100,000
    with transaction(runtime.sessions) as session:
        session.execute(sa.update(Run).where(Run.id == run_id).values(
            status=RunStatus.SUCCEEDED, batches_done=4, rows_sent=100_000, finished_at=NOW))  # fmt: skip
    done = runs.progress(load_run(runtime, run_id), NOW)
    assert (done["batches_done"], done["batches_total"], done["percent"]) == (4, 4, 100.0)
