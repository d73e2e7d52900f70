"""The run's lease, as the engine sees it: every write is fenced by it, and losing it stops the run.

A worker claims a run with a lease (``scheduling.worker``) and renews it with a heartbeat; when the
worker dies the lease expires and another worker resumes the run. :func:`update_run` writes only
while the run is still running under this worker's lease, and raises :class:`LeaseLost` otherwise.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.exports.models import Run, RunStatus


class LeaseLost(Exception):  # an event the run reacts to (it stops without writing), not a failure
    """Another worker took over this run, or this worker is stopping; stop without writing."""


class Cancelled(Exception):
    """A user cancelled the run; the batches in flight were recorded."""


def update_run(session: Session, run_id: int, lease_owner: str, **values: Any) -> None:
    """Set ``values`` on the run, only while it is running under ``lease_owner``."""
    result = session.execute(
        sa.update(Run)
        .where(Run.id == run_id, Run.lease_owner == lease_owner, Run.status == RunStatus.RUNNING)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        raise LeaseLost(f"run {run_id} is no longer leased to {lease_owner}")
