"""An idle worker hears the runs queued in its own process (``runs.QUEUED``) instead of waiting
for its next poll; runs that were not committed do not wake it."""

from __future__ import annotations

import sys
import threading

import pytest
import sqlalchemy as sa

from exports.world import World  # tests/ is on sys.path (rootdir)
from segmentsync.db import transaction
from segmentsync.errors import Conflict
from segmentsync.exports import runs, service
from segmentsync.exports.models import Export, Run, RunStatus
from segmentsync.scheduling.worker import Worker


def queue(world: World, export_id: int) -> int:
    actor = world.admin.load(world.runtime)  # before the write transaction (SQLite: one writer)
    with transaction(world.runtime.sessions) as session:
        export = session.get(Export, export_id)
        assert export is not None
        return service.run(session=session, export=export, actor=actor).id


def status(world: World, run_id: int) -> RunStatus:
    with world.runtime.sessions() as session:
        return session.scalars(sa.select(Run.status).where(Run.id == run_id)).one()


def idle(thread: threading.Thread) -> bool:
    """Is the worker's thread waiting in ``Worker._idle`` (between two polls)?"""
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code.co_name == "_idle":
            return True
        frame = frame.f_back
    return False


def test_committing_a_queued_run_rings_once_and_a_rolled_back_or_refused_one_does_not(world: World) -> None:
    export_id = world.create(world.form()).export_id
    before = runs.QUEUED.rings
    actor = world.admin.load(world.runtime)
    with world.runtime.sessions() as session, session.begin() as outer:
        export = session.get(Export, export_id)
        assert export is not None
        service.run(session=session, export=export, actor=actor)
        outer.rollback()
    assert runs.QUEUED.rings == before
    queue(world, export_id)
    assert runs.QUEUED.rings == before + 1
    with pytest.raises(Conflict):  # the export's run is still active
        queue(world, export_id)
    assert runs.QUEUED.rings == before + 1


def test_an_idle_worker_claims_a_run_queued_in_its_process_without_waiting_for_its_poll(world: World) -> None:
    first = world.create(world.form(name="First")).export_id
    second = world.create(world.form(name="Second")).export_id
    shutdown = threading.Event()
    # A poll every ten minutes: only the doorbell can bring the second run to it within the test.
    worker = Worker(world.runtime, poll_seconds=600)
    loop = threading.Thread(target=worker.run_forever, args=(shutdown,), name="worker", daemon=True)
    run_id = queue(world, first)
    loop.start()
    try:
        for _ in range(600):  # liveness waits (at most 30 s each), not timing checks
            if status(world, run_id) is RunStatus.SUCCEEDED and idle(loop):
                break
            shutdown.wait(0.05)
        assert idle(loop), f"the worker did not go idle after run {run_id}: {status(world, run_id)}"
        later = queue(world, second)
        for _ in range(600):
            if status(world, later) is not RunStatus.QUEUED:
                break
            shutdown.wait(0.05)
        assert status(world, later) is not RunStatus.QUEUED
    finally:
        shutdown.set()
        loop.join(timeout=60)
    assert not loop.is_alive()  # shutdown is heard while idle, though the poll is ten minutes away
    assert status(world, later) is RunStatus.SUCCEEDED
