"""The scheduler: each system refresh refreshes the segments, then queues the exports
scheduled with it; exports with their own cron are queued when due. Several schedulers ticking the
same instant never queue a run twice; a scheduled run that finds its export running is skipped."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from exports.world import World  # tests/ is on sys.path (rootdir)
from segmentsync.db import transaction
from segmentsync.exports import service
from segmentsync.exports.models import Export, Run, RunStatus, Trigger
from segmentsync.runtime import Runtime
from segmentsync.scheduling import schedule
from segmentsync.scheduling.models import SystemRefresh
from segmentsync.scheduling.scheduler import Scheduler, tick
from segmentsync.segments.models import Segment

DAY = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday in winter
SIX = DAY.replace(hour=6)


def set_schedule(world: World, *times: str, saved_at: datetime = DAY, timezone: str = "UTC") -> None:
    data = schedule.ScheduleIn(enabled=True, times=list(times), timezone=timezone)
    admin = world.admin.load(world.runtime)  # before the transaction: SQLite has one writer
    with transaction(world.runtime.sessions) as session:
        schedule.update(session=session, data=data, actor=admin, now=saved_at)


def make(world: World, name: str, **changes: object) -> int:
    return world.create(world.form(name=name, **changes)).export_id


def saved_at(world: World, export_id: int, moment: datetime) -> None:
    """Pretend the export was last saved at ``moment`` (the scheduler never runs what was due before)."""
    with transaction(world.runtime.sessions) as session:
        session.execute(sa.update(Export).where(Export.id == export_id).values(updated_at=moment))


def scheduled_runs(world: World) -> list[tuple[str, RunStatus, datetime | None, str | None]]:
    with world.runtime.sessions() as session:
        found = session.scalars(
            sa.select(Run).where(Run.trigger == Trigger.SCHEDULE).order_by(Run.export_name)
        )
        return [(r.export_name, r.status, r.scheduled_for, r.error) for r in found]


def refreshes(world: World) -> list[SystemRefresh]:
    with world.runtime.sessions() as session:
        return list(session.scalars(sa.select(SystemRefresh).order_by(SystemRefresh.scheduled_for)))


def test_a_system_refresh_refreshes_segments_then_queues_its_exports(world: World) -> None:
    set_schedule(world, "06:00", "18:00")
    make(world, "PL", segment_ids=[world.segments["PL"]])
    make(world, "PL and LV", segment_ids=[world.segments["PL"], world.segments["LV"]])
    make(world, "Own cron", schedule_mode="cron", cron="0 9 * * *")
    make(world, "Off", schedule_mode="off")
    detached = make(world, "Detached")
    admin = world.admin.load(world.runtime)
    with transaction(world.runtime.sessions) as session:
        service.detach(session=session, export=session.get(Export, detached), actor=admin)
    assert tick(world.runtime, SIX - timedelta(seconds=1)).refreshes == []
    done = tick(world.runtime, SIX + timedelta(seconds=5))
    assert done.refreshes == [SIX]
    assert len(done.queued) == 2
    assert scheduled_runs(world) == [
        ("PL", RunStatus.QUEUED, SIX, None),
        ("PL and LV", RunStatus.QUEUED, SIX, None),
    ]
    (refresh,) = refreshes(world)
    assert (refresh.status, refresh.trigger, refresh.finished_at is not None) == (
        "succeeded",
        "schedule",
        True,
    )
    with world.runtime.sessions() as session:
        counts = dict(session.execute(sa.select(Segment.name, Segment.member_count)).tuples().all())
    assert counts["Country PL"] == 10
    assert counts["Country LV"] == 10
    assert counts["Country RO"] is None  # not used by an export scheduled with the system refresh
    # Later ticks do nothing more for that refresh.
    assert tick(world.runtime, SIX + timedelta(minutes=30)).queued == []
    assert len(scheduled_runs(world)) == 2


def test_two_schedulers_ticking_the_same_instant_queue_each_run_once(world: World) -> None:
    set_schedule(world, "06:00")
    for name in ("A", "B", "C"):
        make(world, name)
    cron = make(world, "Cron", schedule_mode="cron", cron="0 6 * * *")
    saved_at(world, cron, DAY)
    # Two processes: each its own engine and connections to the same store.
    other = Runtime.open(world.runtime.settings, migrate=False)
    try:
        for minute in (0, 1):  # the refresh at 06:00, then a tick a minute later
            now = SIX + timedelta(minutes=minute, seconds=1)
            start = threading.Barrier(2)
            errors: list[BaseException] = []

            def ticking(
                runtime: Runtime,
                moment: datetime = now,
                barrier: threading.Barrier = start,
                errors: list[BaseException] = errors,
            ) -> None:
                barrier.wait()
                try:
                    tick(runtime, moment)
                except BaseException as exc:  # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=ticking, args=(rt,)) for rt in (world.runtime, other)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == []
    finally:
        other.close()
    assert len(refreshes(world)) == 1
    assert sorted((name, status) for name, status, _, _ in scheduled_runs(world)) == [
        ("A", RunStatus.QUEUED),
        ("B", RunStatus.QUEUED),
        ("C", RunStatus.QUEUED),
        ("Cron", RunStatus.QUEUED),
    ]


def test_a_scheduled_run_finding_its_export_running_is_skipped_not_doubled(world: World) -> None:
    set_schedule(world, "06:00")
    busy = make(world, "Busy")
    admin = world.admin.load(world.runtime)
    with transaction(world.runtime.sessions) as session:
        running = service.run(session=session, export=session.get(Export, busy), actor=admin)
    done = tick(world.runtime, SIX + timedelta(seconds=1))
    assert len(done.skipped) == 1
    assert scheduled_runs(world) == [
        ("Busy", RunStatus.SKIPPED, SIX, f"already running: run #{running.id} is queued")
    ]
    with world.runtime.sessions() as session:
        assert session.scalar(sa.select(Run.status).where(Run.id == running.id)) is RunStatus.QUEUED
    tick(world.runtime, SIX + timedelta(seconds=30))
    assert len(scheduled_runs(world)) == 1


def test_a_failed_segment_refresh_skips_the_exports_that_depend_on_it(world: World) -> None:
    set_schedule(world, "06:00")
    make(world, "Good", segment_ids=[world.segments["PL"]])
    make(world, "Broken", segment_ids=[world.segments["LV"], world.segments["PL"]])
    with transaction(world.runtime.sessions) as session:  # the LV segment's column went away
        broken = {"op": "and", "items": [{"column": "gone", "operator": "eq", "value": "x"}]}
        session.execute(sa.update(Segment).where(Segment.id == world.segments["LV"]).values(rules=broken))
    tick(world.runtime, SIX + timedelta(seconds=1))
    found = {name: (status, error) for name, status, _, error in scheduled_runs(world)}
    assert found["Good"] == (RunStatus.QUEUED, None)
    status, error = found["Broken"]
    assert status is RunStatus.SKIPPED
    assert error is not None
    assert error.startswith("a dependency failed: segment “Country LV”:")
    (refresh,) = refreshes(world)
    assert refresh.status == "failed"
    assert refresh.error is not None
    assert "Country LV" in refresh.error


def test_an_export_with_its_own_cron_is_queued_when_due_in_its_time_zone(world: World) -> None:
    export_id = make(
        world, "Warsaw mornings", schedule_mode="cron", cron="0 6 * * 1-5", timezone="Europe/Warsaw"
    )
    saved_at(world, export_id, DAY)
    due = DAY.replace(hour=5)  # 06:00 in Warsaw in winter
    assert tick(world.runtime, due - timedelta(seconds=1)).queued == []
    assert len(tick(world.runtime, due + timedelta(seconds=10)).queued) == 1
    assert tick(world.runtime, due + timedelta(seconds=20)).queued == []
    assert scheduled_runs(world) == [("Warsaw mornings", RunStatus.QUEUED, due, None)]


def test_missed_times_run_once_within_the_grace_and_never_before_the_schedule_was_saved(world: World) -> None:
    set_schedule(world, "06:00", "07:00", "08:00", saved_at=SIX.replace(hour=7, minute=30))
    make(world, "Export")
    # Down from 05:00 to 08:30: 06:00 and 07:00 came before the schedule was saved; 08:00 is due once.
    assert tick(world.runtime, SIX.replace(hour=8, minute=30)).refreshes == [SIX.replace(hour=8)]
    # Down again until 09:30 of the next day: the 06:00-08:00 refreshes are more than an hour old.
    assert tick(world.runtime, SIX.replace(hour=9, minute=30) + timedelta(days=1)).refreshes == []
    assert [r.scheduled_for for r in refreshes(world)] == [SIX.replace(hour=8)]


def test_the_scheduler_loop_ticks_until_stopped(world: World) -> None:
    export_id = make(world, "Every minute", schedule_mode="cron", cron="* * * * *")
    saved_at(world, export_id, datetime.now(UTC) - timedelta(minutes=5))
    stop = threading.Event()
    loop = threading.Thread(target=Scheduler(world.runtime, interval=0.05).run_forever, args=(stop,))
    loop.start()
    try:
        for _ in range(200):  # until the due minute is queued (a liveness wait, not a timing check)
            if scheduled_runs(world):
                break
            stop.wait(0.05)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert not loop.is_alive()
    ((name, status, scheduled_for, _),) = scheduled_runs(world)
    assert (name, status) == ("Every minute", RunStatus.QUEUED)
    assert scheduled_for is not None
    assert scheduled_for.second == 0
