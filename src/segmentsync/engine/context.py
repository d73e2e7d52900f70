"""What every step of a run is given: the run, its export and connection, its lease, its destination.

:func:`prepare` reads them once, as the run is claimed; a step changes the run's phase through
:func:`set_phase` (fenced by the lease) and checks :func:`check_stop` between pieces of work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from segmentsync.auth.models import User
from segmentsync.auth.service import export_user_problem
from segmentsync.connections.destination import destination_for
from segmentsync.connections.models import Connection
from segmentsync.destinations.base import Destination
from segmentsync.engine.lease import Cancelled, LeaseLost, update_run
from segmentsync.errors import N_, ConfigError, Fatal
from segmentsync.exports.models import Export, Run, RunPhase, RunStatus
from segmentsync.observe import runs as observe_runs
from segmentsync.runtime import Runtime

DestinationFactory = Callable[[Runtime, Connection], Destination]


def default_destination(runtime: Runtime, connection: Connection) -> Destination:
    return destination_for(runtime=runtime, connection=connection)


class LazyDestination:
    """The run's destination, opened when first needed: a run with nothing to send never calls
    the platform. Opened by the run's thread or its template thread, behind one lock."""

    def __init__(self, runtime: Runtime, connection: Connection, factory: DestinationFactory) -> None:
        self._runtime, self._connection, self._factory = runtime, connection, factory
        self._lock = threading.Lock()
        self._opened: Destination | None = None

    def get(self) -> Destination:
        with self._lock:
            if self._opened is None:
                self._opened = self._factory(self._runtime, self._connection)
            return self._opened

    def close(self) -> None:
        with self._lock:
            if self._opened is not None:
                self._opened.close()


@dataclass
class Context:
    runtime: Runtime
    run: Run
    export: Export
    connection: Connection
    lease_owner: str
    stop: threading.Event  # set by the heartbeat (lease lost, worker stopping) or the sender (lease lost)
    destination: LazyDestination
    # On SQLite the plan's writer and the sender's recorder take turns through this lock instead
    # of waiting in SQLite's busy loop; PostgreSQL needs none.
    write_lock: AbstractContextManager[Any] = field(default_factory=nullcontext)
    cancel: threading.Event = field(default_factory=threading.Event)  # set by lease.CancelWatch

    def update(self, session: Session, **values: Any) -> None:
        """Set ``values`` on the run, fenced by the lease."""
        update_run(session, self.run.id, self.lease_owner, **values)


def prepare(
    runtime: Runtime, run_id: int, lease_owner: str, stop: threading.Event, factory: DestinationFactory
) -> Context:
    """The run, as claimed by ``lease_owner``, with its export and connection (checked)."""
    with runtime.sessions() as session:
        run = session.get(Run, run_id)
        if run is None or run.lease_owner != lease_owner or run.status is not RunStatus.RUNNING:
            raise LeaseLost(f"run {run_id} is not running under {lease_owner}")
        export = session.get(Export, run.export_id) if run.export_id is not None else None
        if export is None:
            raise Fatal("the export of this run was removed", code="export_removed")
        if export.connection_id is None:
            raise ConfigError(
                "No connection: this export was detached from its connection; attach one to run it",
                code="no_connection",
            )
        connection = session.get(Connection, export.connection_id)
        if connection is None:
            raise ConfigError("No connection", code="no_connection")
        _check_export_user(session, connection)
        session.expunge_all()
    lock = threading.Lock() if runtime.engine.dialect.name == "sqlite" else nullcontext()
    destination = LazyDestination(runtime, connection, factory)
    return Context(runtime, run, export, connection, lease_owner, stop, destination, lock)


def _check_export_user(session: Session, connection: Connection) -> None:
    user = session.get(User, connection.export_user_id) if connection.export_user_id else None
    problem = N_("this connection has no export user") if user is None else export_user_problem(user)
    if problem:
        raise ConfigError(
            "%(problem)s. An admin must open the connection “%(connection_name)s” and add themselves as export user.",
            params={"problem": problem, "connection_name": connection.name},
            code="export_user",
        )


def check_stop(ctx: Context, *, cancellable: bool = True) -> None:
    """Between pieces of work: stop if the lease is lost or the worker stops (nothing more is
    written), or if a user cancelled the run (it ends "Cancelled")."""
    if ctx.stop.is_set():
        raise LeaseLost("the worker is stopping")
    if cancellable and ctx.cancel.is_set():
        raise Cancelled


def set_phase(ctx: Context, phase: RunPhase) -> None:
    check_stop(ctx, cancellable=phase is not RunPhase.FINISH)  # all was sent: it finishes
    with ctx.runtime.sessions() as session, session.begin():
        values: dict[str, Any] = {"phase": phase}
        if phase is RunPhase.SEND:
            values["send_started_at"] = ctx.runtime.clock()
        ctx.update(session, **values)
    ctx.run.phase = phase
    observe_runs.phase(phase.value)
