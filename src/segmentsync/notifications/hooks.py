"""The calls the rest of the code makes when something worth telling happens, in its transaction.

Each is one line at its call site: ``run_started`` where a worker first claims a run,
``run_ended`` where a run leaves the running state (``engine/end.py``), ``run_cancelled`` where a
waiting run is cancelled, ``connection_needs_attention`` where a connection is marked so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from sqlalchemy.orm import Session

from segmentsync.connections.models import Connection
from segmentsync.exports.models import Run
from segmentsync.notifications import alerts, events
from segmentsync.settings import Settings

log = logging.getLogger(__name__)


def guarded(hook: Callable[..., None]) -> Callable[..., None]:
    """Run the hook in a savepoint: a bug in telling people never stops the change it reports
    (a run's end, a cancellation) — its events are dropped and the error logged instead."""

    @wraps(hook)
    def call(session: Session, *args: Any) -> None:
        try:
            with session.begin_nested():
                hook(session, *args)
        except Exception:
            log.exception("notifications: %s failed; the change is kept without its events", hook.__name__)

    return call


@guarded
def run_started(session: Session, run_id: int) -> None:
    run = session.get(Run, run_id)
    if run is not None:
        session.refresh(run)  # the claim's UPDATE changed it behind the ORM's back
        events.run_event(session, run)


@guarded
def run_ended(session: Session, settings: Settings, run_id: int, now: datetime) -> None:
    """The run's event (succeeded, failed with ``will_retry``, …) and the alert rules it decides."""
    run = session.get(Run, run_id)
    if run is None:
        return
    session.refresh(run)
    events.run_event(session, run)
    alerts.after_run(session, settings, run, now)


@guarded
def run_cancelled(session: Session, run: Run) -> None:
    session.flush()
    events.run_event(session, run)


@guarded
def connection_needs_attention(session: Session, connection: Connection, message: str) -> None:
    events.emit(session, events.CONNECTION_NEEDS_ATTENTION, events.connection_data(connection, message))
