"""Clocks that disagree: leases and schedules are timed by the metadata store's clock
(``db.database_now``), so a worker or scheduler whose own clock is hours off (an injected
``Runtime.clock``) neither takes over a healthy run early, nor lets its own lease lapse, nor
misses or doubles a scheduled run. On both stores."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from exports.world import World
from segmentsync.db import database_now, transaction, utcnow
from segmentsync.exports.models import Export, Run, RunStatus, Trigger
from segmentsync.runtime import Runtime
from segmentsync.scheduling.scheduler import Scheduler, tick
from segmentsync.scheduling.worker import Worker

from .scenario import load_run, make_export, start_run

OFF = timedelta(hours=3)


def _skewed(runtime: Runtime, by: timedelta) -> Runtime:
    return dataclasses.replace(runtime, clock=lambda: utcnow() + by)


def _store_now(runtime: Runtime) -> datetime:
    with runtime.readers() as session:
        return database_now(session)


def test_a_worker_whose_clock_is_hours_off_neither_takes_over_early_nor_lets_its_lease_lapse(
    world: World,
) -> None:
    runtime = world.runtime
    runtime.settings.worker_lease_seconds = 60
    run_id = start_run(world, make_export(world, "campaign_monitor"))

    behind = Worker(_skewed(runtime, -OFF), name="behind")  # its own clock: 3 hours slow
    assert behind.claim() == run_id
    claimed = load_run(runtime, run_id)
    now = _store_now(runtime)
    assert now < claimed.lease_expires_at <= now + timedelta(seconds=60)  # not 3 hours ago
    for clock in (timedelta(0), OFF):  # right, and 3 hours fast: the lease is alive for both
        assert Worker(_skewed(runtime, clock), name=f"other{clock}").claim() is None

    assert behind._renew_within(run_id, 30) is True  # its heartbeat renews by the store's clock
    renewed = load_run(runtime, run_id)
    assert renewed.lease_expires_at >= claimed.lease_expires_at
    assert Worker(_skewed(runtime, OFF), name="ahead").claim() is None
    assert load_run(runtime, run_id).lease_owner == "behind"

    # Once the lease really expired (the store's clock says so), the run is taken over.
    with transaction(runtime.sessions) as session:
        expired = database_now(session) - timedelta(seconds=1)
        session.execute(sa.update(Run).where(Run.id == run_id).values(lease_expires_at=expired))
    assert Worker(_skewed(runtime, -OFF), name="late").claim() == run_id


def test_schedulers_whose_clocks_are_hours_off_queue_each_due_run_once_on_time(world: World) -> None:
    runtime = world.runtime
    export_id = make_export(world, "campaign_monitor", schedule_mode="cron", cron="0 * * * *")
    now = _store_now(runtime)
    with transaction(runtime.sessions) as session:  # saved two hours ago: the last hour is due
        session.execute(
            sa.update(Export).where(Export.id == export_id).values(updated_at=now - timedelta(hours=2))
        )
    due = now.replace(minute=0, second=0, microsecond=0)

    for clock in (OFF, -OFF, timedelta(0), OFF):
        skewed = _skewed(runtime, clock)
        tick(skewed, Scheduler(skewed).now())  # what Scheduler.run_forever does on each tick

    with runtime.readers() as session:
        queued = session.execute(
            sa.select(Run.scheduled_for, Run.status, Run.trigger).where(Run.export_id == export_id)
        ).all()
    assert [(at.astimezone(UTC), status, trigger) for at, status, trigger in queued] == [
        (due, RunStatus.QUEUED, Trigger.SCHEDULE)
    ]
