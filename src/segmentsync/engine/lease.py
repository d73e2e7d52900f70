"""The run's lease, as the engine sees it: every write is fenced by it, and losing it stops the run.

A worker claims a run with a lease (``scheduling.worker``) and renews it with a heartbeat; when the
worker dies the lease expires and another worker resumes the run. :func:`update_run` writes only
while the run is still running under this worker's lease, and raises :class:`LeaseLost` otherwise.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from segmentsync.db import release_locks_if_cut
from segmentsync.exports.models import Run, RunStatus

log = logging.getLogger(__name__)
# How often a running run looks whether a user cancelled it (one read of its row by primary key).
CANCEL_POLL_SECONDS = 0.2


class LeaseLost(Exception):  # an event the run reacts to (it stops without writing), not a failure
    """Another worker took over this run, or this worker is stopping; stop without writing."""


class Cancelled(Exception):
    """A user cancelled the run; the batches in flight were recorded."""


def update_run(session: Session, run_id: int, lease_owner: str, **values: Any) -> None:
    """Set ``values`` on the run, only while it is running under ``lease_owner``."""
    release_locks_if_cut(session)
    result = session.execute(
        sa.update(Run)
        .where(Run.id == run_id, Run.lease_owner == lease_owner, Run.status == RunStatus.RUNNING)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        raise LeaseLost(f"run {run_id} is no longer leased to {lease_owner}")


class CancelWatch:
    """Sets ``cancel`` as soon as a user has asked to cancel the run: its row's ``cancel_requested``
    is read every :data:`CANCEL_POLL_SECONDS` on a thread of its own (``run<id>-cancel``), so
    that the run stops handing out batches at once — not only when the next batch comes back and
    its checkpoint reads the flag (a Constant Contact import can take minutes) — and in the
    snapshot and plan phases too. Works across processes: the flag is in the store."""

    def __init__(
        self,
        readers: sessionmaker[Session],
        run_id: int,
        cancel: threading.Event,
        every: float = CANCEL_POLL_SECONDS,
    ) -> None:
        self.readers, self.run_id, self.cancel, self.every = readers, run_id, cancel, every
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"run{run_id}-cancel", daemon=True)

    def __enter__(self) -> CancelWatch:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        query = sa.select(Run.cancel_requested).where(Run.id == self.run_id)
        while not self._done.wait(self.every):
            try:
                with self.readers() as session:
                    asked = session.scalar(query)
            except Exception:  # the store is briefly away: the run's own writes will say so  # noqa: S112
                continue
            if asked:
                log.info("run %s: cancel requested: no new batch is sent", self.run_id)
                self.cancel.set()
                return
