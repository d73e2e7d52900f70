"""Where a run found interrupted starts again: **the** routine that decides what is kept and what
is planned again, for every phase it may have stopped in.

A run's phase and whether it keeps a snapshot (``run_snapshots``) say where it stopped. Sending
overlaps the storing of the plan when enough of the snapshot is to be sent (``run.overlaps``);
until every row it sends is checkpointed the run keeps its snapshot, so that an interrupted run
plans the rest from the same members (profiles changed meanwhile do not leak into it) and each
member has one row in the run's account.

| phase found        | snapshot kept | what is kept                                   | what is done again                                             |
|--------------------|---------------|------------------------------------------------|----------------------------------------------------------------|
| none (first start) | no            | nothing                                        | everything: a snapshot of the profile source, the plan, sending |
| snapshot or plan   | no            | nothing (nothing was sent; stored rows dropped) | everything, from a new snapshot of the profile source          |
| snapshot or plan   | yes           | nothing was sent yet                           | the plan, from the kept snapshot                                |
| send               | yes           | the rows it sent (an outcome and a hash)       | the plan of the rest, from the kept snapshot, without them      |
| send               | no            | the whole stored plan and its outcomes         | sending the rows that have no outcome yet                       |
| finish             | no            | everything                                     | the counts and the end                                          |

A batch that was sent but whose checkpoint was lost is sent again: upserts are idempotent, so
the platform's list ends equal to the segment, nobody doubled. Resuming is the same code as
running (``run.py``): only :func:`start_of` and :func:`restart` know it is a resumption.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.destinations.templates import Value
from segmentsync.engine.bulk import CsvQuery, load_csv
from segmentsync.engine.snapshot import Snapshot
from segmentsync.engine.workspace import Workspace, sql_path
from segmentsync.exports.models import RunPhase, RunSnapshot

PLANNED_AGAIN = (None, RunPhase.SNAPSHOT, RunPhase.PLAN)


@dataclass(frozen=True)
class Start:
    """Where a run (re)starts."""

    plan: bool  # snapshot and plan (again); else send what has no outcome, then finish
    from_kept: bool  # the snapshot is the run's kept one, not a new read of the profile source


def start_of(phase: RunPhase | None, *, kept: bool) -> Start:
    """Today's rules (see the table above), in one place."""
    if phase in PLANNED_AGAIN or (kept and phase is RunPhase.SEND):
        return Start(plan=True, from_kept=kept)
    return Start(plan=False, from_kept=False)


# The e-mails an earlier attempt of the run already sent (see :func:`restart`), the same way.
_DONE_CSV = CsvQuery(
    table="done",
    columns=("email",),
    sqlite=(
        "SELECT CAST(group_concat(line, char(10)) AS BLOB), max(seq), count(*) FROM ("
        "SELECT '\"' || replace(email, '\"', '\"\"') || '\"' AS line, seq "
        "FROM run_members WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?)"
    ),
    postgresql="COPY (SELECT email FROM run_members WHERE run_id = {key}) TO STDOUT (FORMAT csv, FORCE_QUOTE (email))",
    start=0,
)


def load_done(ws: Workspace, session: Session, run_id: int) -> None:
    """The e-mails this run already sent in an earlier attempt, as the workspace's table ``done``:
    ``plan.plan`` leaves them out (they keep the outcome they had)."""
    load_csv(ws, session, _DONE_CSV, run_id)


# What an earlier attempt sent is what the sender recorded: an outcome on a row that has a hash
# (the plan's own outcomes — refused, unchanged, invalid — come without one).
_NOT_SENT = "run_id = :run AND (outcome IS NULL OR hash IS NULL)"


def restart(session: Session, run_id: int) -> tuple[int, dict[str, int]]:
    """Before the run's snapshot is taken (again): keep only the rows an earlier attempt sent.

    A run sends while its plan is still being stored; if it stopped then, its next attempt plans
    again from its kept snapshot (:func:`restore`), without the members already sent
    (:func:`load_done`). Returns the first free seq and the kept rows by action (nothing kept on
    a first attempt: ``(1, {})``).
    """
    session.execute(sa.text(f"DELETE FROM run_members WHERE {_NOT_SENT}"), {"run": run_id})  # noqa: S608  # a constant
    session.execute(sa.text("DELETE FROM run_unchanged WHERE run_id = :run"), {"run": run_id})
    kept = session.execute(
        sa.text("SELECT action, count(*), max(seq) FROM run_members WHERE run_id = :run GROUP BY action"),
        {"run": run_id},
    ).all()
    last = max((int(seq) for _, _, seq in kept), default=0)
    return last + 1, {str(action): int(count) for action, count, _ in kept}


# ---------------------------------------------------------------- the kept snapshot

SNAPSHOT_PART_BYTES = 16 << 20  # a row of run_snapshots holds at most this much of the file
SNAPSHOT_ROW_GROUP = 20_000


def save(ws: Workspace, session: Session, run_id: int, snap: Snapshot) -> None:
    """Keep the workspace's ``members`` (the snapshot) in the metadata store, as Parquet in parts
    (``run_snapshots``). :func:`restore` gives it back."""
    path = ws.folder / "snapshot.parquet"
    # One thread and small row groups: ≈ 15 MB more resident memory at a million members instead
    # of ≈ 80 MB, for 0.1 s more (≈ 0.7 s; 19 MB of Parquet). Our own folder's path: safe as a literal.
    (threads,) = ws.con.execute("SELECT current_setting('threads')").fetchone() or (1,)
    ws.con.execute("SET threads = 1")
    try:
        ws.con.execute(
            f"COPY members TO '{sql_path(path)}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {SNAPSHOT_ROW_GROUP})"
        )
    finally:
        ws.con.execute(f"SET threads = {int(threads)}")
    meta = {
        "profiles": snap.profiles,
        "valid": snap.valid,
        "values": [[field, value.sql, value.kind] for field, value in snap.values],
        "consent": None if snap.consent is None else [snap.consent.sql, snap.consent.kind],
    }
    forget(session, run_id)  # a snapshot taken again replaces the one kept
    with path.open("rb") as data:
        for part in itertools.count():
            piece = data.read(SNAPSHOT_PART_BYTES)
            if not piece and part:
                break
            session.add(RunSnapshot(run_id=run_id, part=part, data=piece, meta=meta if part == 0 else None))
            session.flush()  # one part in memory at a time
    path.unlink()


def restore(ws: Workspace, session: Session, run_id: int) -> Snapshot | None:
    """The run's kept snapshot as the workspace's ``members`` (None if none is kept)."""
    parts = session.execute(
        sa.select(RunSnapshot.data, RunSnapshot.meta)
        .where(RunSnapshot.run_id == run_id)
        .order_by(RunSnapshot.part)
    )
    path = ws.folder / "snapshot.parquet"
    meta: dict[str, Any] | None = None
    with path.open("wb") as out:
        for data, part_meta in parts:
            meta = meta or part_meta
            out.write(data)
    if meta is None:
        path.unlink()
        return None
    ws.con.execute(f"CREATE TABLE members AS SELECT * FROM read_parquet('{sql_path(path)}')")  # noqa: S608  # our folder
    path.unlink()
    consent = meta["consent"]
    return Snapshot(
        profiles=int(meta["profiles"]),
        valid=int(meta["valid"]),
        invalid=int(meta["profiles"]) - int(meta["valid"]),
        values=[(field, Value(sql, kind)) for field, sql, kind in meta["values"]],
        consent=None if consent is None else Value(consent[0], consent[1]),
    )


def kept(session: Session, run_id: int) -> bool:
    """Is a snapshot of the run kept?"""
    return (
        session.scalar(sa.select(RunSnapshot.part).where(RunSnapshot.run_id == run_id).limit(1)) is not None
    )


def forget(session: Session, run_id: int) -> None:
    """The run no longer needs its kept snapshot."""
    session.execute(sa.delete(RunSnapshot).where(RunSnapshot.run_id == run_id))
