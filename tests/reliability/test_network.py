"""A worker cut off from the store mid-send (PostgreSQL through a link the test cuts: no reset,
just silence, ``link.Link``): it cannot renew its lease, so it stops sending before the lease can
expire; another worker resumes the run once it expired; when the link comes back the old worker's
late checkpoint is refused by the fence and it stops. Nothing lost; duplicates bounded.

The relay cuts the worker's link to the store only (its link to the platform stays up, so that
"stops sending" is something the platform can count); ``test_network_namespace.py`` cuts a worker's
whole network, store and platform, on a veth pair.
"""

from __future__ import annotations

import logging
import threading

import pytest

from exports.world import World
from segmentsync.runtime import Runtime
from segmentsync.scheduling.worker import Worker

from .link import Link
from .scenario import (
    ON_POSTGRESQL,
    count_received,
    counts_add_up,
    load_run,
    make_export,
    platform_list,
    profile_emails,
    received,
    start_run,
    until,
    write_profiles,
)

PROFILES = 15_000
BATCH_ROWS = 100
LEASE_SECONDS = 6  # a heartbeat every 2 s; a worker that cannot renew stops 2 s before expiry
WINDOW = 16  # Campaign Monitor's most batches in flight
BACKLOG = 32  # acknowledged batches that may wait for their checkpoint (checkpoint.RECORD_BACKLOG)


@ON_POSTGRESQL
@pytest.mark.slow
def test_a_worker_cut_off_from_the_store_stops_before_its_lease_expires(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="segmentsync")
    runtime = world.runtime
    runtime.settings.worker_lease_seconds = LEASE_SECONDS
    runtime.settings.max_batch_rows = BATCH_ROWS
    write_profiles(runtime, PROFILES)
    world.sandbox.cm_faults(latency_ms=300)  # the run lasts seconds
    export_id = make_export(world, "campaign_monitor")
    count_received(world, "campaign_monitor")
    url = runtime.engine.url
    link = Link(url.host or "127.0.0.1", url.port or 5432)
    through_link = url.set(host="127.0.0.1", port=link.port).render_as_string(hide_password=False)
    cut_off_runtime = Runtime.open(runtime.settings.model_copy(update={"database_url": through_link}))
    cut_off = Worker(cut_off_runtime, name="cut-off")
    resumer = Worker(runtime, name="resumer")
    run_id = start_run(world, export_id)
    first = threading.Thread(target=cut_off.run_once, name="cut-off-worker")
    first.start()
    try:
        until("the first checkpoints", lambda: load_run(runtime, run_id).batches_done >= 3)
        link.cut()
        until(
            "the cut-off worker to give up its lease",
            lambda: any("cannot renew the lease of run" in r.getMessage() for r in caplog.records),
        )
        at_stop = received(world, "campaign_monitor").addresses
        held = load_run(runtime, run_id)
        assert held.lease_owner == "cut-off"
        assert resumer.claim() is None  # it stopped before its lease expired

        claimed: list[float] = []

        def taken_over() -> bool:
            found, before = resumer._claim()
            if found is not None:
                claimed.append(before)
            return found is not None

        until("the lease to expire", taken_over)
        # After the cut-off worker stopped, only its batches in flight reached the platform.
        assert received(world, "campaign_monitor").addresses - at_stop <= WINDOW * BATCH_ROWS
        world.sandbox.cm_faults(latency_ms=0)
        resumer.execute_claimed(run_id, claimed[0])
    finally:
        link.restore()
        first.join(timeout=60)
        link.close()
        cut_off_runtime.close()
    assert not first.is_alive()

    run = load_run(runtime, run_id)
    assert run.status.value == "succeeded", run.error
    counts_add_up(run)
    # the old worker's late checkpoint did not count twice (a resent batch counts as updated)
    assert run.new + run.updated == PROFILES
    assert platform_list(world, "campaign_monitor") == profile_emails(runtime)
    refused = [
        r
        for r in caplog.records
        if r.getMessage() == f"run {run_id}: lease lost or worker stopping; another worker will resume it"
    ]
    assert refused, "the cut-off worker's late write was not refused by the fence"
    got = received(world, "campaign_monitor")
    twice = sum(count for times, count in got.times.items() if times > 1)
    # resent by the resumer: the batches in flight at the cut, those in the checkpoint the cut
    # hung, and those waiting for the next one
    assert twice <= (WINDOW + 2 * BACKLOG) * BATCH_ROWS, got.times
    print(f"\nreceived {got.times}; new {run.new}, updated {run.updated}")
