"""Rows the platform reports done in batches not yet acknowledged: the live progress between checkpoints.

A Constant Contact import of 40,000 rows takes many seconds on the platform, which reports its
percentage as it goes (``destinations/progress.py``). Without this the run's progress stood
still for a whole batch and jumped when it was checkpointed. :class:`InFlight` adds up, per batch
in flight, the rows its platform reports done and stores the sum in the run's plan as
``in_flight_rows`` (at most once a second, and when a batch that reported ends), fenced by the
lease like every write of the run; ``exports.runs.progress`` adds it to the rows sent. A platform
that reports nothing (Campaign Monitor answers each batch at once) costs no write at all.
A failed write is only a slower progress bar: it never fails the batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from segmentsync.destinations import progress
from segmentsync.exports.models import Run

log = logging.getLogger(__name__)
KEY = "in_flight_rows"
EVERY_SECONDS = 1.0


class InFlight:
    def __init__(self, sessions: sessionmaker[Session], run_id: int, lease_owner: str,
                 write_lock: AbstractContextManager[Any] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._sessions = sessions
        self._run_id = run_id
        self._owner = lease_owner
        self._write_lock = write_lock
        self._clock = clock
        self._lock = threading.Lock()
        self._rows: dict[tuple[int, object], int] = {}
        self._written_at = -EVERY_SECONDS
        self._written = 0

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Around one batch's call to the destination: its reports count until it returns."""
        marker = object()
        reported = False

        def hook(part: object, rows: int) -> None:
            nonlocal reported
            reported = True
            with self._lock:
                self._rows[(id(marker), part)] = rows
            self._write(force=False)

        try:
            with progress.reporting(hook):
                yield
        finally:
            with self._lock:
                for key in [key for key in self._rows if key[0] == id(marker)]:
                    del self._rows[key]
            if reported:  # its rows are about to be checkpointed: stop counting them now
                self._write(force=True)

    def _write(self, *, force: bool) -> None:
        with self._lock:
            now = self._clock()
            total = sum(self._rows.values())
            if total == self._written or (not force and now - self._written_at < EVERY_SECONDS):
                return
            self._written_at, self._written = now, total
        try:
            with self._write_lock or nullcontext(), self._sessions() as session, session.begin():
                fence = (Run.id == self._run_id) & (Run.lease_owner == self._owner)
                plan = session.scalar(sa.select(Run.plan).where(fence))
                session.execute(sa.update(Run).where(fence).values(plan={**(plan or {}), KEY: total}))
        except SQLAlchemyError as exc:  # only the progress bar is slower; the batch goes on
            log.debug("run %s: in-flight progress not stored: %s", self._run_id, exc)
