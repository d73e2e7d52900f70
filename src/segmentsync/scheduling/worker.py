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
from segmentsync.runtime import Runtime
from segmentsync.scheduling.models import WorkerBeat

log = logging.getLogger(__name__)
# An idle worker looks this often whether a run was queued in its own process (runs.QUEUED) or
# it is asked to stop; it claims from the store at least every ``poll_seconds``.
WAKE_SECONDS = 0.05
FORGET_WORKERS = timedelta(days=1)  # a worker's row without a heartbeat this long is deleted


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
        self.current_run: int | None = None  # the run it executes (its heartbeats say so)

    def claim(self, run_id: int | None = None) -> int | None:
        """Take the next claimable run (or only ``run_id``); returns its id, now RUNNING under our lease."""
        now = self.runtime.clock()
        claimable = (
            sa.select(Run.id, Run.status, Run.lease_owner, Run.phase)
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
            found = session.execute(claimable).first()
            if found is None:
                return None
            run_id, status, previous_owner, phase = found
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
        extra = {
            "event": "run.claimed",
            "worker": self.name,
            "run_id": run_id,
            "previous_status": status.value,
        }
        if status is RunStatus.RUNNING:  # its worker's lease expired: resumed from its checkpoint
            log.warning(
                "worker %s resumed run %s from phase %s (the lease of %s expired)",
                self.name, run_id, phase.value if phase else "start", previous_owner,
                extra={**extra, "event": "run.resumed", "previous_owner": previous_owner},
            )  # fmt: skip
        else:
            log.info("worker %s claimed run %s (%s)", self.name, run_id, status.value, extra=extra)
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
        self.current_run = run_id
        try:
            execute(
                self.runtime,
                run_id,
                lease_owner=self.name,
                stop=stop,
                destination_factory=self.destination_factory,
            )
        finally:
            self.current_run = None
            stop.set()
            beat.join()
        return run_id

    def run_forever(self, shutdown: threading.Event) -> None:
        extra = {"worker": self.name}
        log.info("worker %s started", self.name, extra={**extra, "event": "worker.started"})
        presence = threading.Thread(
            target=self._presence, args=(shutdown,), name=f"presence-{self.name}", daemon=True
        )
        presence.start()
        try:
            warm_up(self.runtime)
        except Exception:  # e.g. the source's engine is not installed: its runs will say so
            log.warning("worker %s: warming up failed", self.name, exc_info=True, extra=extra)
        try:
            self._loop(shutdown)
        finally:
            presence.join()
        log.info("worker %s stopped", self.name, extra={**extra, "event": "worker.stopped"})

    def _loop(self, shutdown: threading.Event) -> None:
        while not shutdown.is_set():
            rung = runs.QUEUED.rings  # before claiming: a run queued meanwhile is not missed
            try:
                ran = self.run_once(shutdown)
            except Exception:  # the database may be briefly away; keep the worker alive
                log.exception("worker %s: claiming failed", self.name)
                ran = None
            if ran is None:
                self._idle(shutdown, rung)

    def _idle(self, shutdown: threading.Event, rung: int) -> None:
        """Until the next poll, a run queued in this process (after ``rung`` rings) or shutdown."""
        deadline = time.monotonic() + self.poll_seconds
        while not shutdown.wait(min(WAKE_SECONDS, max(deadline - time.monotonic(), 0.0))):
            if runs.QUEUED.rings != rung or time.monotonic() >= deadline:
                return

    def beat(self) -> None:
        """Say this worker is alive (its row in ``workers``), with the run it executes."""
        now = self.runtime.clock()
        with self.runtime.sessions() as session, session.begin():
            result = session.execute(
                sa.update(WorkerBeat)
                .where(WorkerBeat.name == self.name)
                .values(heartbeat_at=now, run_id=self.current_run)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
                session.add(
                    WorkerBeat(name=self.name, started_at=now, heartbeat_at=now, run_id=self.current_run)
                )

    def _presence(self, shutdown: threading.Event) -> None:
        """Beat every third of the lease until shutdown, then leave: ``workers_alive`` drops at once."""
        interval = max(self.lease.total_seconds() / 3, 0.05)
        try:
            with self.runtime.sessions() as session, session.begin():  # rows of workers long gone
                session.execute(
                    sa.delete(WorkerBeat).where(
                        WorkerBeat.heartbeat_at < self.runtime.clock() - FORGET_WORKERS
                    )
                )
        except Exception:
            log.warning("worker %s: could not forget old workers", self.name, exc_info=True)
        while True:
            try:
                self.beat()
            except Exception:  # the store may be briefly away; the next beat may pass
                log.warning(
                    "worker %s: heartbeat failed", self.name, exc_info=True, extra={"worker": self.name}
                )
            if shutdown.wait(interval):
                break
        try:
            with self.runtime.sessions() as session, session.begin():
                session.execute(sa.delete(WorkerBeat).where(WorkerBeat.name == self.name))
        except Exception:  # its heartbeat ages out instead
            log.warning("worker %s: could not remove its heartbeat", self.name, exc_info=True)

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
                    log.warning(
                        "worker %s lost the lease of run %s: it stops, the new owner goes on", self.name, run_id,
                        extra={"event": "run.lease_lost", "worker": self.name, "run_id": run_id},
                    )  # fmt: skip
                stop.set()
                return

    def _taken_over(self, run_id: int) -> bool:
        """Is the run running under another worker (rather than ended by this one)?"""
        with self.runtime.readers() as session:
            row = session.execute(sa.select(Run.status, Run.lease_owner).where(Run.id == run_id)).first()
        return row is not None and row.status is RunStatus.RUNNING and row.lease_owner != self.name
