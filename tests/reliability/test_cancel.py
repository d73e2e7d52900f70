"""Cancel means stop: a cancelled run starts no new batch from the moment its worker sees the
request (within ``CANCEL_POLL_SECONDS``, whatever the batches in flight are doing), shows
"Cancelling…" until those come back, records them, and ends "Cancelled".

The platform is made to hold the batches in flight (it answers no import after the first few,
``outage_after``) while the run is cancelled: the run cannot learn of the cancel from a
checkpoint (none comes back), only from its own watch. Once the worker says how many batches it
waits for, the platform answers again; then the platform's own count of what it received tells
what was sent after the cancel.
"""

from __future__ import annotations

import logging
import re
import threading

import pytest
from fastapi.testclient import TestClient

from exports.world import World, outage_after, outage_over
from segmentsync.api.app import create_app
from segmentsync.auth.models import Role
from segmentsync.auth.service import create_user
from segmentsync.connections.destination import destination_for
from segmentsync.connections.models import Connection
from segmentsync.db import transaction
from segmentsync.destinations.base import Destination
from segmentsync.destinations.policy import RetryPolicy, Tuning
from segmentsync.exports import runs
from segmentsync.exports.models import RunStatus
from segmentsync.runtime import Runtime
from segmentsync.scheduling.worker import Worker
from web.pages import Pages  # tests/ is on sys.path (rootdir)

from .scenario import (
    FAST,
    PLATFORMS,
    count_received,
    load_run,
    make_export,
    platform_list,
    received,
    start_run,
    until,
    write_profiles,
)

PATIENT = Tuning(
    timeout=FAST.timeout,
    retry=RetryPolicy(attempts=100_000, timeout=600, wait_initial=0.05, wait_max=0.3, wait_jitter=0.05),
    poll_initial=0.02,
    poll_max=0.2,
    requests_per_second=20,
)
PROFILES = 6_000
BATCH_ROWS = {"campaign_monitor": 200, "constant_contact": 500}
LET_THROUGH = 4  # imports the platform answers before it holds the rest
NOTICED = re.compile(r"run (\d+): cancelled: no new batch is sent; (\d+) batch\(es\) in flight")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_cancelled_run_starts_no_new_batch_and_ends_cancelled(
    world: World, platform: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="segmentsync.engine.send")
    runtime = world.runtime
    write_profiles(runtime, PROFILES)
    runtime.settings.max_batch_rows = BATCH_ROWS[platform]
    export_id = make_export(world, platform)
    count_received(world, platform)
    pages = _signed_in(world) if platform == "campaign_monitor" else None  # before: hashing is slow
    outage_after(world, platform, imports=LET_THROUGH)
    run_id = start_run(world, export_id)
    worker = threading.Thread(target=Worker(runtime, destination_factory=_patient).run_once, name="worker")
    worker.start()
    try:
        batch = BATCH_ROWS[platform]
        until("the first imports", lambda: received(world, platform).addresses >= LET_THROUGH * batch)
        until("the batches held by the platform", lambda: load_run(runtime, run_id).batches_done >= 1)
        at_cancel = received(world, platform).addresses
        with transaction(runtime.sessions) as session:
            runs.cancel_run(session=session, run_id=run_id, actor=world.admin.load(runtime))
        cancelling = load_run(runtime, run_id)
        assert (cancelling.status, runs.cancelling(cancelling)) == (RunStatus.RUNNING, True)

        def noticed() -> re.Match[str] | None:
            return next(
                (m for r in caplog.records if (m := NOTICED.search(r.getMessage())) and int(m[1]) == run_id),
                None,
            )

        until("the worker to see the cancel while no batch comes back", noticed)
        match = noticed()
        assert match is not None
        in_flight = int(match[2])
        assert received(world, platform).addresses == at_cancel  # the platform still holds them
        if pages is not None:  # the state as people see it (the same on both platforms)
            _shows_cancelling(world, pages, run_id)
        outage_over(world, platform)  # the batches in flight are answered now
        worker.join(timeout=120)
        assert not worker.is_alive()
    finally:
        outage_over(world, platform)
        worker.join(timeout=120)

    run = load_run(runtime, run_id)
    assert run.status is RunStatus.CANCELLED, run.error
    assert not runs.cancelling(run)
    after = received(world, platform)
    sent_after_cancel = after.addresses - at_cancel
    # Only the batches in flight when the worker saw the cancel went out after it (none new).
    assert sent_after_cancel <= in_flight * batch
    assert after.most_times == 1  # the held requests were not processed twice
    on_list = platform_list(world, platform)
    assert len(on_list) == after.addresses < PROFILES
    assert run.new == len(on_list)  # every batch that came back was recorded


def _patient(runtime: Runtime, connection: Connection) -> Destination:
    """The real destination, retrying a held request for as long as the test holds it (on a
    loaded machine the checks while it is held may take a while)."""
    return destination_for(runtime=runtime, connection=connection, tuning=PATIENT)


def _signed_in(world: World) -> Pages:
    with transaction(world.runtime.sessions) as session:
        create_user(session=session, email="ola@example.com", role=Role.ADMIN, actor=None,
                    password=PASSWORD, language="pl")  # fmt: skip
    pages = Pages(world.runtime, language="pl")
    assert pages.sign_in("ola@example.com", PASSWORD).status_code == 303
    return pages


def _shows_cancelling(world: World, pages: Pages, run_id: int) -> None:
    """The API says ``cancelling``; the run page (here in Polish) says "Cancelling…", says what
    cannot be taken back, and offers Cancel no more."""
    api = TestClient(create_app(world.runtime)).get(f"/api/v1/runs/{run_id}", headers=world.admin.auth)
    assert (api.json()["status"], api.json()["cancelling"]) == ("running", True)
    live = pages.get(f"/runs/{run_id}/live").json()
    assert (live["statusLabel"], live["cancelling"], live["active"]) == ("Anulowanie…", True, True)
    page = pages.get(f"/runs/{run_id}").text
    assert "Anulowanie…" in page
    assert "importu przyjętego już przez platformę nie można cofnąć" in page
    assert 'data-testid="run-cancelling" hidden' not in page
    assert 'data-testid="cancel-run"' not in page


PASSWORD = "correct horse battery"
