"""Workers claim queued runs with a lease, keep it alive with heartbeats, and execute them.

Claiming is one UPDATE … RETURNING over the first claimable run: queued, due for a retry, or
running under a lease that expired (its worker died: the run is resumed from its checkpoint).
PostgreSQL skips rows another worker is claiming (``FOR UPDATE SKIP LOCKED``); SQLite takes its
write lock up front (``BEGIN IMMEDIATE``), which serialises claims just as well. Every write of
the run engine is fenced by ``lease_owner``, so a worker that lost its lease cannot write.

Leases are timed by the store's clock (``db.database_now``), never the worker's: a worker whose
clock runs hours ahead or behind neither takes over a healthy run nor lets its own lease lapse.
A worker that cannot renew its lease (the store is unreachable, or answers too slowly) stops
sending one heartbeat before the lease could expire, measured on its own monotonic clock from
the last renewal it is sure of; another worker resumes the run after the expiry, and the old
worker's late writes are refused by the fence.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa

from segmentsync.db import database_now, release_locks_if_cut
from segmentsync.engine.run import DestinationFactory, execute, warm_up
from segmentsync.exports import runs
from segmentsync.exports.models import Run, RunPhase, RunStatus
from segmentsync.notifications import hooks
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
        return self._claim(run_id)[0]

    def _claim(self, run_id: int | None = None) -> tuple[int | None, float]:
        """The claimed run's id (or None), and the monotonic time before the claim: the lease
        lasts at least ``self.lease`` from then."""
        before = time.monotonic()
        with self.runtime.sessions() as session, session.begin():
            release_locks_if_cut(session)
            now = database_now(session)
            found = self._claim_in(session, now, run_id)
        if found is None:
            return None, before
        run_id, status, previous_owner, phase = found
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
        return run_id, before

    def _claim_in(
        self, session: sa.orm.Session, now: datetime, run_id: int | None
    ) -> tuple[int, RunStatus, str | None, RunPhase | None] | None:
        """The run claimed, with its status, owner and phase before the claim (for the log)."""
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
        found = session.execute(claimable).first()
        if found is None:
            return None
        run_id, status, previous_owner, phase = found
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
        return int(run_id), status, previous_owner, phase

    def run_once(self, shutdown: threading.Event | None = None) -> int | None:
        """Claim one run and execute it to its next resting state; returns its id."""
        run_id, claimed = self._claim()
        if run_id is None:
            return None
        self.execute_claimed(run_id, claimed, shutdown)
        return run_id

    def execute_claimed(self, run_id: int, claimed: float, shutdown: threading.Event | None = None) -> None:
        """Execute a run this worker claimed (``claimed``: the monotonic time before the claim),
        renewing its lease meanwhile."""
        stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat,
            args=(run_id, stop, shutdown, claimed),
            name=f"heartbeat-run{run_id}",
            daemon=True,
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
        with self.runtime.sessions() as session, session.begin():
            now = database_now(session)  # the store's clock, like the leases: ages agree everywhere
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
                        WorkerBeat.heartbeat_at < database_now(session) - FORGET_WORKERS
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

    def _heartbeat(
        self, run_id: int, stop: threading.Event, shutdown: threading.Event | None, claimed: float
    ) -> None:
        """Renew the lease every third of it; stop the run if it is lost, or one beat before it
        could expire when it cannot be renewed (``claimed``: the monotonic time before the claim)."""
        lease = self.lease.total_seconds()
        interval = max(lease / 3, 0.05)
        sure_until = claimed + lease  # the lease lasts at least until then (monotonic)
        while not stop.wait(min(interval, max(sure_until - interval - time.monotonic(), 0.0))):
            if shutdown is not None and shutdown.is_set():
                stop.set()  # finish the batches in flight, record them, and let another worker resume
                return
            started = time.monotonic()
            renewed = self._renew_within(run_id, sure_until - interval - started)
            if renewed is None:  # failed or too slow: the lease still has time left, or not
                if time.monotonic() >= sure_until - interval:
                    log.warning(
                        "worker %s cannot renew the lease of run %s: stops sending before it can "
                        "expire; another worker will resume the run", self.name, run_id,
                        extra={"event": "run.lease_unrenewable", "worker": self.name, "run_id": run_id},
                    )  # fmt: skip
                    stop.set()
                    return
                continue
            if renewed:
                sure_until = started + lease
                continue
            if not stop.is_set() and self._taken_over(run_id):  # not merely ended by us
                log.warning(
                    "worker %s lost the lease of run %s: it stops, the new owner goes on", self.name, run_id,
                    extra={"event": "run.lease_lost", "worker": self.name, "run_id": run_id},
                )  # fmt: skip
            stop.set()
            return

    def _renew_within(self, run_id: int, seconds: float) -> bool | None:
        """Renew the lease, waiting at most ``seconds`` for the store (a cut link may hang rather
        than fail): True if renewed, False if the run is no longer ours, None if not known."""
        answer: list[bool] = []

        def renew() -> None:
            try:
                with self.runtime.sessions() as session, session.begin():
                    release_locks_if_cut(session)
                    result = session.execute(
                        sa.update(Run)
                        .where(Run.id == run_id, Run.lease_owner == self.name)
                        .values(lease_expires_at=database_now(session) + self.lease)
                    )
                answer.append(result.rowcount == 1)  # type: ignore[attr-defined]  # CursorResult of an UPDATE
            except Exception:  # a missed beat is not fatal while the lease has time left
                log.warning("worker %s: heartbeat for run %s failed", self.name, run_id, exc_info=True)

        thread = threading.Thread(target=renew, name=f"renew-run{run_id}", daemon=True)
        thread.start()
        thread.join(max(seconds, 0.0))
        return answer[0] if answer else None

    def _taken_over(self, run_id: int) -> bool:
        """Is the run running under another worker (rather than ended by this one)?"""
        with self.runtime.readers() as session:
            row = session.execute(sa.select(Run.status, Run.lease_owner).where(Run.id == run_id)).first()
        return row is not None and row.status is RunStatus.RUNNING and row.lease_owner != self.name
