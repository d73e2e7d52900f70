"""Runs: list with filters, one run with its progress, per-row outcomes (search, CSV), cancel, confirm.

The CSV download is streamed page by page (:func:`views.csv_chunks`), each page read in a short
session of its own, so a million-row download never holds a transaction (SQLite: the write lock).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import Field
from sqlalchemy.orm import Session

from segmentsync.api.deps import RuntimeDep, SessionDep, require
from segmentsync.api.pagination import KeyPageDep, Page, by_key, decode_cursor, encode_cursor, key_int
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action
from segmentsync.errors import Invalid
from segmentsync.exports import runs, views
from segmentsync.exports.models import ACTIVE_STATUSES, Outcome, Run, RunStatus, Trigger
from segmentsync.exports.schemas import RunOut, RunRowOut
from segmentsync.runtime import Runtime

router = APIRouter(prefix="/runs", tags=["runs"])
MAX_WAIT_SECONDS = 60  # ?wait= is bounded: proxies and clients time out idle requests after ~60-100 s
WAIT_POLL_SECONDS = 0.5
Viewer = Annotated[User, Depends(require(Action.RUNS_VIEW))]
Canceller = Annotated[User, Depends(require(Action.RUNS_CANCEL))]
EmailQuery = Annotated[str | None, Query(max_length=320, description="part of an email address")]
OutcomeQuery = Annotated[
    str | None, Query(description="new, updated, unchanged, removed, invalid, rejected, skipped or pending")
]


def _outcome(value: str | None) -> str | None:
    if value is None or value == "pending" or value in {o.value for o in Outcome}:
        return value
    raise Invalid(
        f"unknown outcome {value!r}; choose one of {', '.join(o.value for o in Outcome)} or pending",
        field="outcome",
    )


def _one(session: Session, runtime: Runtime, run_id: int) -> RunOut:
    run = runs.get_run(session, run_id)
    return views.run_outs(session, [run], now=runtime.clock())[0]


@router.get("", summary="Runs, newest first (filter by export, status, trigger, dry run)")
def list_runs(
    session: SessionDep,
    runtime: RuntimeDep,
    actor: Viewer,
    page: KeyPageDep,
    export_id: int | None = None,
    status: Annotated[str | None, Query(description="one status or several, comma-separated")] = None,
    trigger: Trigger | None = None,
    dry_run: bool | None = None,
) -> Page[RunOut]:
    for part in (status or "").split(","):
        if part.strip() and part.strip() not in {s.value for s in RunStatus}:
            raise Invalid(f"unknown run status {part.strip()!r}", field="status")
    query = views.run_query(
        actor=actor,
        export_id=export_id,
        status=status,
        trigger=trigger.value if trigger else None,
        dry_run=dry_run,
    )
    found, total, after = by_key(session, query, page, [Run.id], lambda run: (run.id,), [key_int])
    return Page(
        items=views.run_outs(session, found, now=runtime.clock()),
        total=total,
        limit=page.limit,
        offset=page.offset,
        next_cursor=after,
    )


@router.get("/{run_id}", summary="One run: status, counts, progress (batches, rows/s, ETA), error")
async def get_run(
    run_id: int,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: Viewer,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description=f"answer as soon as the run ends (not queued, running or waiting for a retry), "
            f"or after this many seconds (at most {MAX_WAIT_SECONDS}) with the run as it is then",
        ),
    ] = 0,
) -> RunOut:
    found = await run_in_threadpool(_one, session, runtime, run_id)
    if wait <= 0 or found.status not in ACTIVE_STATUSES:
        return found
    # While it waits, the request holds no transaction, no connection and no thread: it sleeps on
    # the event loop and looks again in a short read-only session of its own each time.
    await run_in_threadpool(session.commit)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    key = (id(runtime), run_id)
    watch = _WATCHES.setdefault(key, _Watch())
    watch.waiters += 1
    try:
        while (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(WAIT_POLL_SECONDS, left))
            found = await watch.latest(runtime, run_id)
            if found.status not in ACTIVE_STATUSES:
                break
    finally:
        watch.waiters -= 1
        if not watch.waiters:
            _WATCHES.pop(key, None)
    return found


class _Watch:
    """The requests waiting on one run share its reading: one read per poll interval, however many
    wait (each read takes a pooled connection and a thread for a moment)."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.read_at = float("-inf")
        self.waiters = 0
        self.value: RunOut | None = None

    async def latest(self, runtime: Runtime, run_id: int) -> RunOut:
        async with self.lock:
            now = asyncio.get_running_loop().time()
            if self.value is None or now - self.read_at >= WAIT_POLL_SECONDS * 0.8:
                self.value = await run_in_threadpool(_fresh, runtime, run_id)
                self.read_at = asyncio.get_running_loop().time()
            return self.value


_WATCHES: dict[tuple[int, int], _Watch] = {}  # (runtime, run) → the watch of its waiting requests


def _fresh(runtime: Runtime, run_id: int) -> RunOut:
    with runtime.readers() as session:
        return _one(session, runtime, run_id)


class RowsPage(Page[RunRowOut]):
    total: int | None = Field(  # type: ignore[assignment]  # narrowed: None where it is not stored
        description="how many rows match; null on a page read by cursor of a run whose counts are "
        "not final (still running, failed): counting would read every row before the page"
    )


@router.get("/{run_id}/rows", summary="The run's per-row outcomes (search by email, filter by outcome)")
def list_rows(
    run_id: int,
    session: SessionDep,
    actor: Viewer,
    page: KeyPageDep,
    email: EmailQuery = None,
    outcome: OutcomeQuery = None,
) -> RowsPage:
    after = decode_cursor(page.cursor, [key_int])[0] if page.cursor else None
    found, total = runs.rows_page(
        session,
        run_id,
        email=email,
        outcome=_outcome(outcome),
        limit=page.limit,
        offset=page.offset,
        after=after,
    )
    return RowsPage(
        items=[views.row_out(m) for m in found],
        total=total,
        limit=page.limit,
        offset=page.offset,
        next_cursor=encode_cursor((found[-1].seq,)) if len(found) == page.limit else None,
    )


@router.get(
    "/{run_id}/rows.csv",
    summary="The run's per-row outcomes as CSV (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def download_rows(
    run_id: int,
    session: SessionDep,
    runtime: RuntimeDep,
    actor: Viewer,
    email: EmailQuery = None,
    outcome: OutcomeQuery = None,
) -> StreamingResponse:
    run = runs.get_run(session, run_id)
    chosen = _outcome(outcome)
    runs.rows_query(run_id, email=email, outcome=chosen)  # checks the filters before streaming
    session.commit()  # the download reads in sessions of its own
    filename = f"run-{run.id}-rows.csv"
    return StreamingResponse(
        (chunk.encode() for chunk in views.csv_chunks(runtime, run_id, email=email, outcome=chosen)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post(
    "/{run_id}/cancel", summary="Cancel: a queued run ends now, a running one after its batches in flight"
)
def cancel_run(run_id: int, session: SessionDep, runtime: RuntimeDep, actor: Canceller) -> RunOut:
    runs.cancel_run(session=session, run_id=run_id, actor=actor)
    session.flush()
    return _one(session, runtime, run_id)


@router.post("/{run_id}/confirm", summary="Confirm the removals a mirror-guarded run stopped for")
def confirm_run(run_id: int, session: SessionDep, runtime: RuntimeDep, actor: Canceller) -> RunOut:
    runs.confirm_removals(session=session, run_id=run_id, actor=actor)
    session.flush()
    return _one(session, runtime, run_id)
