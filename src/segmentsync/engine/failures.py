"""How a run ends when something other than the platform fails: the metadata store (a resumable
retry soon, without spending an attempt), a full data folder (tried again every minute, the error
naming the folder), or a bug (retried, then reported). Every checkpoint before the failure is
committed, so each resumes from the last one (see ``engine/resume.py``)."""

from __future__ import annotations

import errno
import logging
from datetime import timedelta

import sqlalchemy as sa

from segmentsync.db import database_now, sqlite_file
from segmentsync.engine import end
from segmentsync.errors import Retriable
from segmentsync.exports.models import RunStatus
from segmentsync.runtime import Runtime

log = logging.getLogger("segmentsync.engine.run")  # the run's own lines, as before the move

# A run stopped by a full disk is tried again this late (the attempt is not counted).
NO_ROOM_RETRY = timedelta(minutes=1)


def disk_full(exc: BaseException) -> bool:
    """The filesystem of the data folder (or of the SQLite store) has no room left."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(getattr(exc, "orig", None) or exc)
    return "database or disk is full" in text or "No space left on device" in text


def no_room(runtime: Runtime, run_id: int, lease_owner: str, exc: BaseException) -> RunStatus | None:
    """The run stops where it is: every checkpoint before is committed, and it resumes from the
    last one once there is room (it is tried again every minute, without spending an attempt; if
    even that cannot be written, its lease expires and another claim resumes it)."""
    store = sqlite_file(runtime.engine.url) if "database or disk is full" in str(exc) else None
    folder = store.parent if store is not None else runtime.settings.data_dir
    message = (
        f"the data folder {folder} is full: free some room there (or give it a bigger disk); "
        "the run resumes from its last checkpoint"
    )
    log.error("run %s: %s (%s)", run_id, message, getattr(exc, "orig", None) or exc)
    try:
        with runtime.readers() as session:
            retry_at = database_now(session) + NO_ROOM_RETRY
        return end.end(runtime, run_id, lease_owner, RunStatus.FAILED_RETRY, "disk_full", message,
                       retry_at=retry_at)  # fmt: skip
    except Exception:  # no room even for that: the lease expires, and the run is resumed
        log.warning("run %s: could not record it; the run is resumed once its lease expires", run_id)
        return None


# A run whose store failed is tried again this soon (the attempt is not counted).
STORE_RETRY = timedelta(seconds=5)


def store_failed(runtime: Runtime, run_id: int, lease_owner: str, exc: Exception) -> RunStatus | None:
    """Every checkpoint the store kept is committed: the run resumes from the last one, soon,
    without spending one of its attempts; if the store cannot take even that, the lease expires
    and another claim resumes it. ``exc``: a ``DBAPIError`` or ``checkpoint.CheckpointsLost``."""
    cause = getattr(exc, "orig", None) or exc
    log.warning(
        "run %s: the metadata store failed: %s; the run resumes from its last checkpoint", run_id, cause
    )
    message = f"the metadata store failed ({type(cause).__name__}); resumes from its last checkpoint"
    try:
        with runtime.readers() as session:
            retry_at = database_now(session) + STORE_RETRY
        return end.end(runtime, run_id, lease_owner, RunStatus.FAILED_RETRY, "store_unavailable", message,
                       retry_at=retry_at)  # fmt: skip
    except sa.exc.DBAPIError:
        log.warning("run %s: the store is still away; the run is resumed once its lease expires", run_id)
        return None


def unexpected(runtime: Runtime, run_id: int, lease_owner: str, exc: Exception) -> RunStatus | None:
    log.exception("run %s: unexpected error", run_id)
    return end.failed(
        runtime,
        run_id,
        lease_owner,
        Retriable("unexpected error: %(name)s: %(exc)s", params={"name": exc.__class__.__name__, "exc": exc}),
    )
