"""A worker on its own network host loses its whole network mid-send: a real ``segmentsync worker``
process in a network namespace (``netns.py``) reaches PostgreSQL (a server the test owns, listening
on this host's end of a veth pair) and the platform (a sandbox listening there too) only across
the pair. The test cuts the pair silently (every packet dropped, no reset): the worker cannot renew
its lease and stops before it can expire; another worker, on this host, takes the run over once it
expired and sends the rest; the link comes back while it sends, and the old worker's late
checkpoint is refused by the fence. Nothing lost; duplicates bounded by the batches in flight and
those waiting for their checkpoint. (``test_network.py`` cuts the store's link only, with a relay.)
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exports.world import World
from segmentsync.exports.models import RunStatus
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.scheduling.worker import Worker

from .netns import NetworkHost
from .own_postgres import OwnPostgres
from .processes import WorkerProcess, worker_env
from .scenario import (
    FINAL,
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

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(240)]
PROFILES = 15_000
BATCH_ROWS = 100
LEASE_SECONDS = 6  # a heartbeat every 2 s; a worker that cannot renew stops 2 s before expiry
WINDOW = 16  # Campaign Monitor's most batches in flight
BACKLOG = 32  # acknowledged batches that may wait for their checkpoint (checkpoint.RECORD_BACKLOG)
CANNOT_RENEW = "cannot renew the lease of run"


@pytest.fixture(scope="module")
def _sandbox_process(network_host: NetworkHost) -> Iterator[Sandbox]:
    """The sandbox on this host's end of the pair: reachable from the namespace, and from here."""
    with Sandbox.start(host=network_host.outside) as sandbox:
        yield sandbox


@pytest.fixture
def store_url(own_server: OwnPostgres, network_host: NetworkHost) -> str:
    if network_host.outside not in own_server.listen:
        # this host connects from its own end of the pair, the namespace from the other
        own_server.listen_also(network_host.outside, network_host.outside, network_host.inside)
    own_server.empty_store()
    return own_server.url(host=network_host.outside)


def test_a_worker_cut_off_from_its_network_stops_and_is_fenced(
    world: World, network_host: NetworkHost, tmp_path: Path
) -> None:
    runtime = world.runtime
    runtime.settings.worker_lease_seconds = LEASE_SECONDS
    write_profiles(runtime, PROFILES)
    world.sandbox.cm_faults(latency_ms=300)  # the run lasts seconds
    export_id = make_export(world, "campaign_monitor")
    count_received(world, "campaign_monitor")
    env = worker_env(
        runtime.settings, runtime.settings.resolved_database_url,
        SEGMENTSYNC_MAX_BATCH_ROWS=str(BATCH_ROWS), SEGMENTSYNC_WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
    )  # fmt: skip
    cut_off = WorkerProcess(env, tmp_path / "cut-off.log", prefix=network_host.prefix)
    runtime.settings.max_batch_rows = BATCH_ROWS
    resumer = Worker(runtime, name="resumer")
    run_id = start_run(world, export_id)
    cut_off.start()
    errors: list[BaseException] = []
    try:
        until("the first checkpoints", lambda: load_run(runtime, run_id).batches_done >= 3)
        network_host.cut()
        cut_at = time.monotonic()
        until("the cut-off worker to give up its lease", lambda: CANNOT_RENEW in cut_off.log_text())
        gave_up = time.monotonic() - cut_at
        held = load_run(runtime, run_id)
        claimed_by = re.search(rf"worker (\S+) claimed run {run_id} ", cut_off.log_text())
        assert claimed_by is not None, cut_off.tail()
        assert held.status is RunStatus.RUNNING
        assert held.lease_owner == claimed_by.group(1)  # still its lease: it stopped before the expiry
        assert resumer.claim() is None  # nobody takes a lease that has not expired

        claimed: list[float] = []

        def taken_over() -> bool:
            found, before = resumer._claim()
            if found is not None:
                claimed.append(before)
            return found is not None

        until("the lease to expire", taken_over)
        taken_at = time.monotonic() - cut_at

        def resume() -> None:
            try:
                resumer.execute_claimed(run_id, claimed[0])
            except BaseException as exc:  # seen by the test below
                errors.append(exc)

        resuming = threading.Thread(target=resume, name="resumer")
        resuming.start()
        until(
            "the resumer's first checkpoints",
            lambda: (
                load_run(runtime, run_id).batches_done >= held.batches_done + 3
                or load_run(runtime, run_id).status in FINAL
            ),
        )
        network_host.restore()  # while the resumer sends: the old worker's writes meet its lease
        cut_for = time.monotonic() - cut_at
        resuming.join(timeout=120)
        until(
            "the fence to refuse the cut-off worker's late checkpoint",
            lambda: f"run {run_id}: lease lost or worker stopping" in cut_off.log_text(),
            timeout=120,
        )
    finally:
        if network_host.is_cut:
            network_host.restore()
        cut_off.stop()
    assert not errors, errors
    assert not resuming.is_alive()

    run = load_run(runtime, run_id)
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.lease_owner in (None, "resumer")
    counts_add_up(run)
    assert run.new + run.updated == PROFILES  # the late checkpoint did not count twice
    assert platform_list(world, "campaign_monitor") == profile_emails(runtime)
    got = received(world, "campaign_monitor")
    twice = sum(count for times, count in got.times.items() if times > 1)
    print(
        f"\ncut at batch {held.batches_done}; gave up {gave_up:.1f} s after the cut, taken over after "
        f"{taken_at:.1f} s, link back after {cut_for:.1f} s; received {got.times}; "
        f"new {run.new}, updated {run.updated}"
    )
    # resent: the batches in flight at the cut (delivered late too, when the link came back), those
    # in the checkpoint the cut hung, and those waiting for the next one
    assert twice <= (WINDOW + 2 * BACKLOG) * BATCH_ROWS, got.times
    assert got.most_times <= 2, got.most
