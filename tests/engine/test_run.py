"""The run engine end to end: real profiles, real metadata store (SQLite and PostgreSQL), both
platforms' emulators over real HTTP, the worker claiming runs. No part of ours is mocked."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import duckdb
import httpx
import pytest
import sqlalchemy as sa

from exports.world import World, outage_after, outage_over  # tests/ is on sys.path (rootdir)
from segmentsync.db import transaction
from segmentsync.engine import plan as planner
from segmentsync.engine.run import execute
from segmentsync.exports import runs, service
from segmentsync.exports.models import (
    Delivered,
    Export,
    Run,
    RunMember,
    RunPhase,
    RunSnapshot,
    RunStatus,
    RunUnchanged,
    SyncMode,
)
from segmentsync.exports.schemas import ExportUpdate
from segmentsync.scheduling.worker import Worker

PLATFORMS = ["campaign_monitor", "constant_contact"]


@pytest.fixture(autouse=True)
def _fast_platforms(world: World) -> None:
    # Rate limits and activity timing are tested with the destinations; here they only slow us down.
    world.sandbox.cc_faults(requests_per_second=None, instant_activities=True)


def make_export(world: World, platform: str, **changes: Any) -> int:
    base = world.form if platform == "campaign_monitor" else world.cc_form
    values: dict[str, Any] = {"segment_ids": [world.segments["all"]], "name": f"{platform} export"}
    values.update(changes)
    return world.create(base(**values)).export_id


def run_export(world: World, export_id: int, **options: Any) -> Run:
    actor = world.admin.load(world.runtime)
    with transaction(world.runtime.sessions) as session:
        export = session.get(Export, export_id)
        assert export is not None
        run_id = runs.start_run(session=session, export=export, actor=actor, **options).id
    assert Worker(world.runtime).run_once() == run_id
    return load_run(world, run_id)


def load_run(world: World, run_id: int) -> Run:
    with world.runtime.sessions() as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run


def platform_list(world: World, platform: str) -> dict[str, dict[str, Any]]:
    """Who is on the export's list in the platform, by lower-case email (active members only)."""
    if platform == "campaign_monitor":
        url = (
            f"{world.sandbox.campaign_monitor_url}/_sandbox/lists/{world.cm.list_id}/subscribers?state=Active"
        )
        return {row["EmailAddress"].lower(): row for row in httpx.get(url, timeout=30).json()}
    url = f"{world.sandbox.constant_contact_url}/_sandbox/lists/{world.cc.list_id}/members"
    return {row["email"].lower(): row for row in httpx.get(url, timeout=30).json()["members"]}


def upsert_calls(world: World, platform: str) -> int:
    if platform == "campaign_monitor":
        stats = httpx.get(f"{world.sandbox.campaign_monitor_url}/_sandbox/stats", timeout=10).json()
        return int(stats["requests"].get("POST /api/v3.3/subscribers/{listid}/import.json", 0))
    stats = httpx.get(f"{world.sandbox.constant_contact_url}/_sandbox/stats", timeout=10).json()
    return int(stats["requests"].get("POST /v3/activities/contacts_json_import", 0))


def segment_emails(world: World, where: str = "true") -> set[str]:
    con = duckdb.connect(str(world.runtime.settings.data_dir / "profiles.duckdb"), read_only=True)
    try:
        return {
            row[0].lower() for row in con.execute(f"SELECT email FROM profiles WHERE {where}").fetchall()
        }  # test constants
    finally:
        con.close()


def change_profiles(world: World, sql: str) -> None:
    con = duckdb.connect(str(world.runtime.settings.data_dir / "profiles.duckdb"))
    try:
        con.execute(sql)
    finally:
        con.close()


@pytest.mark.parametrize("platform", PLATFORMS)
def test_first_run_delivers_the_segment_and_an_unchanged_rerun_sends_nothing(
    world: World, platform: str
) -> None:
    export_id = make_export(world, platform)
    first = run_export(world, export_id)
    assert first.status is RunStatus.SUCCEEDED, first.error
    expected = segment_emails(world)
    assert set(platform_list(world, platform)) == expected
    assert (first.profiles, first.new, first.updated, first.invalid) == (len(expected), len(expected), 0, 0)
    calls = upsert_calls(world, platform)

    second = run_export(world, export_id)
    assert second.status is RunStatus.SUCCEEDED
    assert (second.unchanged, second.new, second.updated) == (len(expected), 0, 0)
    assert upsert_calls(world, platform) == calls  # not one upsert call


@pytest.mark.parametrize("platform", PLATFORMS)
def test_only_changed_profiles_are_sent_again(world: World, platform: str) -> None:
    export_id = make_export(world, platform, attributes=_name_attribute(platform))
    run_export(world, export_id)
    change_profiles(world, "UPDATE profiles SET first_name = 'Renamed' WHERE profile_id IN (3, 7)")
    change_profiles(
        world, "INSERT INTO profiles SELECT 99, 'newbie@example.com', 'New', 'Bie', 'City0', 30, 'PL', 'yes'"
    )
    later = run_export(world, export_id)
    assert (later.new, later.updated, later.unchanged) == (1, 2, 40 - 2)
    on_list = platform_list(world, platform)
    renamed = on_list["person3@example.com"]
    assert (
        ("Renamed" in str(renamed.get("Name")))
        if platform == "campaign_monitor"
        else renamed["first_name"] == "Renamed"
    )
    assert "newbie@example.com" in on_list


def _name_attribute(platform: str) -> list[dict[str, str]]:
    if platform == "campaign_monitor":
        return [{"column": "first_name", "target": "Name"}, {"column": "last_name", "target": "Name"}]
    return [{"column": "first_name", "target": "first_name"}, {"column": "last_name", "target": "last_name"}]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_mirror_takes_out_members_who_left_and_the_guard_stops_a_mass_removal(
    world: World, platform: str
) -> None:
    export_id = make_export(world, platform, sync_mode=SyncMode.MIRROR)
    run_export(world, export_id)
    change_profiles(world, "DELETE FROM profiles WHERE profile_id <= 4")
    small = run_export(world, export_id)
    assert (small.status, small.removed) == (RunStatus.SUCCEEDED, 4)
    assert set(platform_list(world, platform)) == segment_emails(world)

    change_profiles(world, "UPDATE profiles SET country = 'DE'")  # everyone leaves the segment
    stopped = run_export(world, export_id)
    assert stopped.status is RunStatus.AWAITING_CONFIRMATION
    assert "would remove 36 of the 36" in (stopped.error or "")
    assert len(platform_list(world, platform)) == 36  # nothing taken out

    actor = world.admin.load(world.runtime)
    with transaction(world.runtime.sessions) as session:
        runs.confirm_removals(session=session, run_id=stopped.id, actor=actor)
    assert Worker(world.runtime).run_once() == stopped.id
    confirmed = load_run(world, stopped.id)
    assert (confirmed.status, confirmed.removed) == (RunStatus.SUCCEEDED, 36)
    assert platform_list(world, platform) == {}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_over_the_limit_fails_before_sending_anything(world: World, platform: str) -> None:
    world.runtime.settings.export_limit = 10
    export_id = make_export(world, platform)
    run = run_export(world, export_id)
    assert run.status is RunStatus.FAILED
    assert "hold 40 profiles" in (run.error or "")
    assert "at most 10" in (run.error or "")
    assert upsert_calls(world, platform) == 0


def test_dry_run_reports_the_plan_and_sends_nothing(world: World) -> None:
    export_id = make_export(world, "campaign_monitor")
    run = run_export(world, export_id, dry_run=True)
    assert run.status is RunStatus.SUCCEEDED
    assert run.plan is not None
    assert run.plan["new"] == 40
    assert len(run.plan["samples"]["new"]) == 5
    assert upsert_calls(world, "campaign_monitor") == 0
    assert platform_list(world, "campaign_monitor") == {}


def test_bad_rows_are_counted_with_reasons_and_nothing_valid_is_lost(world: World) -> None:
    change_profiles(
        world,
        """
        UPDATE profiles SET email = NULL WHERE profile_id = 1;
        UPDATE profiles SET email = 'not-an-email' WHERE profile_id = 2;
        UPDATE profiles SET email = upper(email) WHERE profile_id = 3;
        UPDATE profiles SET email = 'PERSON3@example.com' WHERE profile_id = 4;
        """,
    )
    export_id = make_export(world, "campaign_monitor")
    run = run_export(world, export_id)
    assert (run.invalid, run.new) == (3, 37)
    with world.runtime.sessions() as session:
        reasons = dict(
            session.execute(
                sa.select(RunMember.profile_key, RunMember.message).where(
                    RunMember.run_id == run.id, RunMember.outcome == "invalid"
                )
            ).all()
        )
    assert reasons["1"] == "no email address"
    assert "@" in reasons["2"]
    assert reasons["4"] == "duplicate of profile 3 (same email)"
    assert len(platform_list(world, "campaign_monitor")) == 37


def test_unsubscribed_on_the_platform_is_skipped_not_resubscribed(world: World) -> None:
    export_id = make_export(world, "campaign_monitor")
    run_export(world, export_id)
    httpx.post(
        f"{world.sandbox.campaign_monitor_url}/_sandbox/lists/{world.cm.list_id}/subscribers/state",
        json={"EmailAddress": "person5@example.com", "State": "Unsubscribed"},
        timeout=10,
    ).raise_for_status()
    later = run_export(world, export_id, full_resync=True)
    assert later.status is RunStatus.SUCCEEDED
    assert (later.skipped, later.updated) == (1, 39)
    with world.runtime.sessions() as session:
        skipped = session.scalar(
            sa.select(RunMember).where(RunMember.run_id == later.id, RunMember.outcome == "skipped")
        )
    assert skipped is not None
    assert skipped.email == "person5@example.com"
    assert skipped.message
    assert "person5@example.com" not in platform_list(world, "campaign_monitor")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_interrupted_run_resumes_and_every_member_arrives_exactly_once(world: World, platform: str) -> None:
    """A worker stops after a few acknowledged batches (as if it died); another resumes the run."""
    change_profiles(
        world,
        "DELETE FROM profiles; INSERT INTO profiles SELECT i, 'p' || i || '@example.com', 'F', 'L', 'C', 1, 'PL', 'yes' FROM range(1, 5001) t(i)",
    )
    # After 10 imports the platform answers none until the first worker has stopped: the run
    # cannot end before it, however fast or loaded the machine is.
    outage_after(world, platform, imports=10, latency_ms=20)
    export_id = make_export(world, platform, segment_ids=[world.segments["PL"]])
    world.runtime.settings.max_batch_rows = 100  # many checkpoints in a few thousand members
    run_id = _start_and_stop_after(world, export_id, batches=5, then=lambda: outage_over(world, platform))
    interrupted = load_run(world, run_id)
    assert interrupted.status is RunStatus.RUNNING
    assert 5 <= interrupted.batches_done < interrupted.batches_total
    with world.runtime.sessions() as session:  # until every row is sent, the snapshot is kept
        assert session.scalar(
            sa.select(sa.func.count()).select_from(RunSnapshot).where(RunSnapshot.run_id == run_id)
        )

    _resume_elsewhere(world, run_id)
    done = load_run(world, run_id)
    assert done.status is RunStatus.SUCCEEDED, done.error
    assert done.new == 5000
    assert set(platform_list(world, platform)) == {f"p{i}@example.com" for i in range(1, 5001)}
    # each batch sent once, plus at most the batches that were in flight when the first stopped
    assert upsert_calls(world, platform) <= done.batches_total + 8


def test_a_run_interrupted_while_it_sends_resumes_from_the_same_snapshot(world: World) -> None:
    """Sending starts while the plan is still being read out, and each batch's rows are stored
    only by its checkpoint. A worker stops then (rows already sent, the snapshot kept); the
    profiles change; another worker resumes the run: it keeps what was sent, plans the rest from
    the kept snapshot (not from the changed profiles) and sends each member once."""
    total = 6 * planner.CHUNK_ROWS  # the plan is stored in six chunks, the sender takes four ahead at most
    change_profiles(
        world,
        "DELETE FROM profiles; INSERT INTO profiles SELECT i, 'p' || i || '@example.com', 'Old', 'L', 'C', 1, "
        f"'PL', 'yes' FROM range(1, {total + 1}) t(i)",
    )
    # After 20 imports the platform answers none until the first worker has stopped: the sender
    # cannot leave the first chunk, so the plan's writer (at most four chunks ahead) cannot store
    # the sixth, however fast or loaded the machine is.
    outage_after(world, "campaign_monitor", imports=20, latency_ms=20)
    export_id = make_export(
        world,
        "campaign_monitor",
        segment_ids=[world.segments["PL"]],
        attributes=_name_attribute("campaign_monitor"),
    )
    world.runtime.settings.max_batch_rows = 100  # the first chunk alone is 100 batches
    run_id = _start_and_stop_after(
        world, export_id, batches=5, then=lambda: outage_over(world, "campaign_monitor")
    )
    interrupted = load_run(world, run_id)
    assert (interrupted.status, interrupted.phase) == (RunStatus.RUNNING, RunPhase.SEND)
    with world.runtime.sessions() as session:
        stored = session.scalar(
            sa.select(sa.func.count()).select_from(RunMember).where(RunMember.run_id == run_id)
        )
        sent = session.scalar(
            sa.select(sa.func.count())
            .select_from(RunMember)
            .where(RunMember.run_id == run_id, RunMember.outcome.is_not(None))
        )
        assert session.scalar(
            sa.select(sa.func.count()).select_from(RunSnapshot).where(RunSnapshot.run_id == run_id)
        )
    assert 5 * 100 <= (sent or 0) == (stored or 0) < total  # only what was sent and checkpointed is stored
    on_list_before = len(platform_list(world, "campaign_monitor"))
    assert on_list_before >= sent

    change_profiles(world, "UPDATE profiles SET first_name = 'New'")  # after the snapshot: not this run's
    _resume_elsewhere(world, run_id)
    done = load_run(world, run_id)
    assert done.status is RunStatus.SUCCEEDED, done.error
    assert (done.new, done.updated, done.unchanged, done.profiles) == (total, 0, 0, total)
    on_list = platform_list(world, "campaign_monitor")
    assert set(on_list) == {f"p{i}@example.com" for i in range(1, total + 1)}
    assert {row["Name"] for row in on_list.values()} == {"Old L"}  # the kept snapshot's values
    with world.runtime.sessions() as session:
        emails = list(session.scalars(sa.select(RunMember.email).where(RunMember.run_id == run_id)))
        assert not session.scalar(
            sa.select(sa.func.count()).select_from(RunSnapshot).where(RunSnapshot.run_id == run_id)
        )
    assert len(emails) == len(set(emails)) == total  # each member once in the run's account
    assert upsert_calls(world, "campaign_monitor") <= done.batches_total + 16  # + what was in flight


def _start_and_stop_after(
    world: World, export_id: int, *, batches: int, then: Callable[[], object] | None = None
) -> int:
    """Start a run; a first worker executes it and stops after ``batches`` (as if it died);
    ``then`` is called once the worker is told to stop."""
    actor = world.admin.load(world.runtime)
    with transaction(world.runtime.sessions) as session:
        export = session.get(Export, export_id)
        assert export is not None
        run_id = runs.start_run(session=session, export=export, actor=actor).id
    first = Worker(world.runtime, name="first")
    stopper = _stop_after_batches(world, run_id, batches=batches, then=then)
    assert first.claim() == run_id
    _execute_until(first, run_id, stopper)
    return run_id


def _resume_elsewhere(world: World, run_id: int) -> None:
    """The first worker's lease runs out; a second worker resumes the run to its end."""
    with transaction(world.runtime.sessions) as session:
        session.execute(
            sa.update(Run)
            .where(Run.id == run_id)
            .values(lease_expires_at=world.runtime.clock() - timedelta(seconds=1))
        )
    assert Worker(world.runtime, name="second").run_once() == run_id


def _stop_after_batches(
    world: World, run_id: int, batches: int, then: Callable[[], object] | None = None
) -> threading.Event:
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with world.runtime.sessions() as session:
                done = session.scalar(sa.select(Run.batches_done).where(Run.id == run_id)) or 0
            if done >= batches:
                stop.set()
                if then is not None:
                    then()
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()
    return stop


def _execute_until(worker: Worker, run_id: int, stop: threading.Event) -> None:
    assert execute(worker.runtime, run_id, lease_owner=worker.name, stop=stop) is None


def test_a_cancelled_run_stops_after_the_batches_in_flight(world: World) -> None:
    change_profiles(
        world,
        "DELETE FROM profiles; INSERT INTO profiles SELECT i, 'p' || i || '@example.com', 'F', 'L', 'C', 1, 'PL', 'yes' FROM range(1, 3001) t(i)",
    )
    # After 6 imports the platform answers none until the run is cancelled: it cannot end first.
    outage_after(world, "campaign_monitor", imports=6, latency_ms=30)
    export_id = make_export(world, "campaign_monitor", segment_ids=[world.segments["PL"]])
    world.runtime.settings.max_batch_rows = 100
    actor = world.admin.load(world.runtime)
    with transaction(world.runtime.sessions) as session:
        export = session.get(Export, export_id)
        assert export is not None
        run_id = runs.start_run(session=session, export=export, actor=actor).id

    def cancel_soon() -> None:
        while True:
            with world.runtime.sessions() as session:
                if (session.scalar(sa.select(Run.batches_done).where(Run.id == run_id)) or 0) >= 3:
                    break
            time.sleep(0.01)
        actor = world.admin.load(world.runtime)
        with transaction(world.runtime.sessions) as session:
            runs.cancel_run(session=session, run_id=run_id, actor=actor)
        outage_over(world, "campaign_monitor")  # the batches in flight are answered now

    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    Worker(world.runtime).run_once()
    canceller.join()
    run = load_run(world, run_id)
    assert run.status is RunStatus.CANCELLED
    on_list = platform_list(world, "campaign_monitor")
    sent = len(on_list)
    assert 300 <= sent < 3000
    assert run.new == sent  # every acknowledged batch was recorded
    # the run's end folded what it delivered into the export's delivered state, and only that
    with world.runtime.sessions() as session:
        delivered = set(session.scalars(sa.select(Delivered.email).where(Delivered.export_id == export_id)))
    assert delivered == set(on_list)
    again = run_export(world, export_id)
    assert (again.status, again.new, again.unchanged) == (RunStatus.SUCCEEDED, 3000 - sent, sent)
    assert len(platform_list(world, "campaign_monitor")) == 3000


@pytest.mark.postgres
def test_two_workers_never_run_the_same_run(world: World) -> None:
    if world.runtime.engine.dialect.name != "postgresql":
        pytest.skip("several workers need PostgreSQL")
    ids = [
        make_export(world, "campaign_monitor", name=f"e{i}", segment_ids=[world.segments["PL"]])
        for i in range(6)
    ]
    actor = world.admin.load(world.runtime)
    for export_id in ids:
        with transaction(world.runtime.sessions) as session:
            export = session.get(Export, export_id)
            assert export is not None
            runs.start_run(session=session, export=export, actor=actor)
    claimed: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> Callable[[], None]:
        def loop() -> None:
            worker = Worker(world.runtime, name=name)
            while (run_id := worker.run_once()) is not None:
                with lock:
                    claimed.append(run_id)

        return loop

    threads = [threading.Thread(target=work(f"w{i}")) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == len(set(claimed)) == 6
    with world.runtime.sessions() as session:
        statuses = set(session.scalars(sa.select(Run.status)))
    assert statuses == {RunStatus.SUCCEEDED}


def test_pointing_an_export_at_another_list_sends_everyone_there(world: World) -> None:
    export_id = make_export(world, "campaign_monitor")
    run_export(world, export_id)
    service.update(
        runtime=world.runtime,
        export_id=export_id,
        changes=ExportUpdate(list_id=world.cm.other_list_id),
        actor=world.admin.load(world.runtime),
    )
    moved = run_export(world, export_id)
    assert (moved.new, moved.unchanged) == (40, 0)
    url = f"{world.sandbox.campaign_monitor_url}/_sandbox/lists/{world.cm.other_list_id}/subscribers?state=Active"
    assert len(httpx.get(url, timeout=10).json()) == 40


def test_only_the_latest_runs_keep_their_per_row_outcomes(world: World) -> None:
    world.runtime.settings.run_history_rows_kept = 2
    export_id = make_export(world, "campaign_monitor")
    ids = [run_export(world, export_id).id for _ in range(3)]
    with world.runtime.sessions() as session:
        kept = set(session.scalars(sa.select(RunMember.run_id).distinct()))
        kept |= set(session.scalars(sa.select(RunUnchanged.run_id)))  # the unchanged re-runs
        runs_left = session.scalar(sa.select(sa.func.count()).select_from(Run))
    assert kept == set(ids[1:])
    assert runs_left == 3  # the history itself stays
