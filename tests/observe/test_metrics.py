"""The metric families against real runs: a real export through the sandbox, scraped as
Prometheus scrapes it; the store's gauges from queued, running and retrying runs and workers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from exports.world import World  # tests/ is on sys.path (rootdir)
from segmentsync.db import transaction
from segmentsync.exports.models import Export, Run, RunStatus
from segmentsync.observe import metrics
from segmentsync.runtime import Runtime
from segmentsync.scheduling.models import WorkerBeat
from segmentsync.scheduling.worker import Worker
from segmentsync.settings import Settings

from .runs import PLATFORMS, make_export, queue_run, run_export, sandbox_requests
from .scrape import by_label, delta, scrape, value

PHASES = ("snapshot", "plan", "send", "finish", "total")


@pytest.fixture(autouse=True)
def _fast_platforms(world: World) -> None:
    world.sandbox.cc_faults(requests_per_second=None, instant_activities=True)


@pytest.mark.parametrize(
    "store_url", ["sqlite"], indirect=True
)  # counted from the run as stored: the store does not matter
@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_run_is_counted_as_it_ended(world: World, platform: str) -> None:
    export_id = make_export(world, platform)
    before, sandbox_before = scrape(world.runtime), sandbox_requests(world, platform)
    run = run_export(world, export_id)
    after, sandbox_after = scrape(world.runtime), sandbox_requests(world, platform)

    assert (run.status, run.new) == (RunStatus.SUCCEEDED, 20)
    ran = {"platform": platform, "trigger": "on_demand"}
    assert delta(before, after, "segmentsync_runs_total", **ran, status="succeeded") == 1
    assert delta(before, after, "segmentsync_runs_total") == 1
    for outcome in metrics.OUTCOMES:
        counted = delta(before, after, "segmentsync_rows_total", platform=platform, outcome=outcome)
        assert counted == getattr(run, outcome), outcome
    for phase in PHASES:
        assert (
            delta(before, after, "segmentsync_run_duration_seconds_count", platform=platform, phase=phase)
            == 1
        )
    # every request the emulator answered was counted once, with its status and time
    answered = sum(sandbox_after.values()) - sum(sandbox_before.values())
    assert delta(before, after, "segmentsync_platform_requests_total", platform=platform) == answered
    assert (
        delta(before, after, "segmentsync_platform_requests_total", platform=platform, status="200")
        + delta(before, after, "segmentsync_platform_requests_total", platform=platform, status="201")
        + delta(before, after, "segmentsync_platform_requests_total", platform=platform, status="202")
        == answered
    )
    assert (
        delta(before, after, "segmentsync_platform_request_duration_seconds_count", platform=platform)
        == answered
    )
    operations = by_label(after, "segmentsync_platform_requests_total", "operation", platform=platform)
    imports = (
        "POST /subscribers/{id}/import.json"
        if platform == "campaign_monitor"
        else "POST /activities/contacts_json_import"
    )
    assert imports in operations
    assert all(
        "@" not in op and not any(ch.isdigit() for ch in op) for op in operations
    )  # templates, not ids
    assert delta(before, after, "segmentsync_platform_throttled_total", platform=platform) == 0


@pytest.mark.parametrize(
    "store_url", ["sqlite"], indirect=True
)  # counted from the run as stored: the store does not matter
def test_throttling_and_token_refreshes_are_counted(world: World) -> None:
    export_id = make_export(world, "constant_contact")
    world.sandbox.cc_faults(throttle_rate=0.5, seed=7, path_pattern="import")
    token = world.cc.credentials["access_token"]
    expired = httpx.post(
        f"{world.sandbox.constant_contact_url}/_sandbox/tokens/expire",
        json={"access_token": token},
        timeout=10,
    )
    assert expired.status_code == 200, expired.text
    before = scrape(world.runtime)
    run = run_export(world, export_id)
    after = scrape(world.runtime)

    assert run.status is RunStatus.SUCCEEDED
    throttled = delta(before, after, "segmentsync_platform_throttled_total", platform="constant_contact")
    answered_429 = delta(
        before, after, "segmentsync_platform_requests_total", platform="constant_contact", status="429"
    )
    assert throttled == answered_429 > 0
    assert (
        delta(before, after, "segmentsync_platform_requests_total", platform="constant_contact", status="401")
        == 1
    )
    assert (
        delta(before, after, "segmentsync_token_refreshes_total", platform="constant_contact", result="ok")
        == 1
    )
    assert (
        delta(before, after, "segmentsync_platform_requests_total", platform="oauth", operation="POST /token")
        == 1
    )


@pytest.mark.parametrize(
    "store_url", ["sqlite"], indirect=True
)  # counted from the run as stored: the store does not matter
def test_a_failed_attempt_is_counted_with_its_status_and_no_rows(world: World) -> None:
    export_id = make_export(world, "campaign_monitor")
    with transaction(world.runtime.sessions) as session:  # the list was deleted in Campaign Monitor
        session.execute(sa.update(Export).where(Export.id == export_id).values(list_id="0" * 32))
    before = scrape(world.runtime)
    run = run_export(world, export_id)
    after = scrape(world.runtime)

    assert run.status is RunStatus.FAILED, run.error
    ran = {"platform": "campaign_monitor", "trigger": "on_demand"}
    assert delta(before, after, "segmentsync_runs_total", **ran, status="failed") == 1
    assert delta(before, after, "segmentsync_rows_total") == 0
    assert (
        delta(before, after, "segmentsync_platform_requests_total", platform="campaign_monitor", status="401")
        >= 1
    )


def test_the_queue_gauges_are_read_from_the_store(world: World) -> None:
    empty = scrape(world.runtime)
    assert value(empty, "segmentsync_store_up") == 1
    assert (value(empty, "segmentsync_runs_queued"), value(empty, "segmentsync_runs_running")) == (0, 0)
    assert value(empty, "segmentsync_oldest_queued_run_age_seconds") == 0

    first = queue_run(world, make_export(world, "campaign_monitor"))
    queue_run(world, make_export(world, "constant_contact"))
    with transaction(world.runtime.sessions) as session:  # the first has waited ten minutes
        session.execute(
            sa.update(Run)
            .where(Run.id == first)
            .values(created_at=world.runtime.clock() - timedelta(minutes=10))
        )
    queued = scrape(world.runtime)
    assert value(queued, "segmentsync_runs_queued") == 2
    assert 600 <= value(queued, "segmentsync_oldest_queued_run_age_seconds") < 700

    assert Worker(world.runtime).claim() == first  # running now; the other still waits
    running = scrape(world.runtime)
    assert (value(running, "segmentsync_runs_queued"), value(running, "segmentsync_runs_running")) == (1, 1)
    assert value(running, "segmentsync_oldest_queued_run_age_seconds") < 600
    with transaction(world.runtime.sessions) as session:
        session.execute(
            sa.update(Run).where(Run.id == first).values(status=RunStatus.FAILED_RETRY, lease_owner=None)
        )
    assert value(scrape(world.runtime), "segmentsync_runs_retrying") == 1


def test_workers_alive_and_the_age_of_the_latest_heartbeat(world: World) -> None:
    runtime = world.runtime
    assert "segmentsync_worker_heartbeat_age_seconds" not in {name for name, _ in scrape(runtime)}
    one, two = Worker(runtime, name="one"), Worker(runtime, name="two")
    one.beat()
    two.current_run = 1
    two.beat()
    alive = scrape(runtime)
    assert (value(alive, "segmentsync_workers_alive"), value(alive, "segmentsync_workers_busy")) == (2, 1)
    assert value(alive, "segmentsync_worker_heartbeat_age_seconds") < runtime.settings.worker_lease_seconds

    lease = timedelta(seconds=runtime.settings.worker_lease_seconds)
    with transaction(runtime.sessions) as session:  # both stopped beating a lease and a minute ago
        session.execute(
            sa.update(WorkerBeat).values(heartbeat_at=runtime.clock() - lease - timedelta(minutes=1))
        )
    gone = scrape(runtime)
    assert (value(gone, "segmentsync_workers_alive"), value(gone, "segmentsync_workers_busy")) == (0, 0)
    assert value(gone, "segmentsync_worker_heartbeat_age_seconds") >= lease.total_seconds() + 60


def test_the_last_success_of_the_exports_an_operator_names(world: World) -> None:
    named = make_export(world, "campaign_monitor", name="Daily newsletter")
    other = make_export(world, "constant_contact", name="Other")
    assert "segmentsync_export_last_success_timestamp_seconds" not in {n for n, _ in scrape(world.runtime)}

    world.runtime.settings.metrics_exports = f"Daily newsletter, {other}"
    never = scrape(world.runtime)
    labels = {"export_id": str(named), "export": "Daily newsletter"}
    assert value(never, "segmentsync_export_last_success_timestamp_seconds", **labels) == 0
    run = run_export(world, named)
    assert run.finished_at is not None
    after = scrape(world.runtime)
    assert value(after, "segmentsync_export_last_success_timestamp_seconds", **labels) == pytest.approx(
        run.finished_at.timestamp()
    )
    assert set(by_label(after, "segmentsync_export_last_success_timestamp_seconds", "export")) == {
        "Daily newsletter",
        "Other",
    }


def test_a_store_that_does_not_answer_is_a_metric_not_a_failed_scrape(tmp_path: Path) -> None:
    runtime = Runtime.open(
        Settings(data_dir=tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none"), migrate=False
    )
    try:
        samples = scrape(runtime)
    finally:
        runtime.close()
    assert value(samples, "segmentsync_store_up") == 0
    assert "segmentsync_runs_queued" not in {name for name, _ in samples}
