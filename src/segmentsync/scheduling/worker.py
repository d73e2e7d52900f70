"""Workers claim queued runs with a lease, keep it alive with heartbeats, and execute them.

Claiming is one UPDATE … RETURNING over the first claimable run: queued, due for a retry, or
running under a lease that expired (its worker died: the run is resumed from its checkpoint).
PostgreSQL skips rows another worker is claiming (``FOR UPDATE SKIP LOCKED``); SQLite takes its
write lock up front (``BEGIN IMMEDIATE``), which serialises claims just as well. Every write of
the run engine is fenced by ``lease_owner``, so a worker that lost its lease cannot write.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import timedelta

import sqlalchemy as sa

from segmentsync.engine.run import DestinationFactory, execute, warm_up
from segmentsync.exports import runs
from segmentsync.exports.models import Run, RunStatus
from segmentsync.notifications import hooks
from segmentsync.runtime import Runtime

log = logging.getLogger(__name__)
# An idle worker looks this often whether a run was queued in its own process (runs.QUEUED) or
# it is asked to stop; it claims from the store at least every ``poll_seconds``.
WAKE_SECONDS = 0.05


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        runtime: Runtime,
        *,
        name: str | None = None,
        poll_seconds: float = 1.0,
        destination_factory: DestinationFactory | None = None,
    ) -> None:
        self.runtime = runtime
        self.name = name or worker_name()
        self.poll_seconds = poll_seconds
        self.lease = timedelta(seconds=runtime.settings.worker_lease_seconds)
        self.destination_factory = destination_factory

    def claim(self, run_id: int | None = None) -> int | None:
        """Take the next claimable run (or only ``run_id``); returns its id, now RUNNING under our lease."""
        now = self.runtime.clock()
        claimable = (
            sa.select(Run.id)
            .where(
                sa.or_(
                    Run.status == RunStatus.QUEUED,
                    sa.and_(Run.status == RunStatus.FAILED_RETRY, Run.next_attempt_at <= now),
                    sa.and_(Run.status == RunStatus.RUNNING, Run.lease_expires_at < now),
                )
            )
            .order_by(Run.created_at, Run.id)
            .limit(1)
        )
        if run_id is not None:  # `exports run --wait` runs its own run in-process
            claimable = claimable.where(Run.id == run_id)
        if self.runtime.engine.dialect.name == "postgresql":
            claimable = claimable.with_for_update(skip_locked=True)
        with self.runtime.sessions() as session, session.begin():
            run_id = session.scalar(claimable)
            if run_id is None:
                return None
            first = session.scalar(sa.select(Run.started_at).where(Run.id == run_id)) is None
            session.execute(
                sa.update(Run)
                .where(Run.id == run_id)
                .values(
                    status=RunStatus.RUNNING,
                    lease_owner=self.name,
                    lease_expires_at=now + self.lease,
                    next_attempt_at=None,
                    started_at=sa.func.coalesce(Run.started_at, now),
                )
            )
            if first:
                hooks.run_started(session, run_id)  # run.started, once (not on a resume or a retry)
        log.info("worker %s claimed run %s", self.name, run_id)
        return int(run_id)

    def run_once(self, shutdown: threading.Event | None = None) -> int | None:
        """Claim one run and execute it to its next resting state; returns its id."""
        run_id = self.claim()
        if run_id is None:
            return None
        stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(run_id, stop, shutdown), name=f"heartbeat-run{run_id}", daemon=True
        )
        beat.start()
        try:
            execute(
                self.runtime,
                run_id,
                lease_owner=self.name,
                stop=stop,
                destination_factory=self.destination_factory,
            )
        finally:
            stop.set()
            beat.join()
        return run_id

    def run_forever(self, shutdown: threading.Event) -> None:
        log.info("worker %s started", self.name)
        try:
            warm_up(self.runtime)
        except Exception:  # e.g. the source's engine is not installed: its runs will say so
            log.warning("worker %s: warming up failed", self.name, exc_info=True)
        while not shutdown.is_set():
            rung = runs.QUEUED.rings  # before claiming: a run queued meanwhile is not missed
            try:
                ran = self.run_once(shutdown)
            except Exception:  # the database may be briefly away; keep the worker alive
                log.exception("worker %s: claiming failed", self.name)
                ran = None
            if ran is None:
                self._idle(shutdown, rung)
        log.info("worker %s stopped", self.name)

    def _idle(self, shutdown: threading.Event, rung: int) -> None:
        """Until the next poll, a run queued in this process (after ``rung`` rings) or shutdown."""
        deadline = time.monotonic() + self.poll_seconds
        while not shutdown.wait(min(WAKE_SECONDS, max(deadline - time.monotonic(), 0.0))):
            if runs.QUEUED.rings != rung or time.monotonic() >= deadline:
                return

    def _heartbeat(self, run_id: int, stop: threading.Event, shutdown: threading.Event | None) -> None:
        interval = max(self.lease.total_seconds() / 3, 0.05)
        while not stop.wait(interval):
            if shutdown is not None and shutdown.is_set():
                stop.set()  # finish the batches in flight, record them, and let another worker resume
                return
            try:
                with self.runtime.sessions() as session, session.begin():
                    result = session.execute(
                        sa.update(Run)
                        .where(Run.id == run_id, Run.lease_owner == self.name)
                        .values(lease_expires_at=self.runtime.clock() + self.lease)
                    )
            except Exception:  # a missed beat is not fatal; the lease still has time left
                log.warning("worker %s: heartbeat for run %s failed", self.name, run_id, exc_info=True)
                continue
            if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
                if not stop.is_set() and self._taken_over(run_id):  # not merely ended by us
                    log.warning("worker %s lost the lease of run %s", self.name, run_id)
                stop.set()
                return

    def _taken_over(self, run_id: int) -> bool:
        """Is the run running under another worker (rather than ended by this one)?"""
        with self.runtime.readers() as session:
            row = session.execute(sa.select(Run.status, Run.lease_owner).where(Run.id == run_id)).first()
        return row is not None and row.status is RunStatus.RUNNING and row.lease_owner != self.name
