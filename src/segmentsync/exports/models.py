"""Exports, their runs, each run's rows (plan and outcome) and delivered state.

How the tables work together (docs/architecture.md, "Phases and tables"):

* ``run_members`` holds one row per member of a run's plan (plus one per member to remove), but
  for the unchanged members. The snapshot and the plan are made in the run's workspace
  (``engine/snapshot.py``, ``engine/plan.py``); the plan's rows are written with their action —
  invalid and refused ones with their outcome at once, the ones to send with their payload and
  hash — and the send phase sets the outcome of each acknowledged batch. Where sending overlaps
  the storing of the plan, the rows to send are inserted by their batch's checkpoint, outcome
  included. A resumed run sends the rows whose outcome is still empty (``engine/resume.py``).
* ``run_unchanged`` holds a run's unchanged members compactly (zlib-compressed lines).
* ``run_snapshots`` keeps a run's snapshot while it sends from a plan not yet stored in full: an
  interrupted run plans the rest again from the same members.
* ``delivered`` is what this export last delivered to its list: email + hash of the mapped
  fields. An unchanged member has the same hash and is not sent again.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from segmentsync.db import Base, UTCDateTime, str_enum, utcnow
from segmentsync.outcomes import Outcome as Outcome  # re-exported: the type of run_members.outcome


class SyncMode(StrEnum):
    ADD_UPDATE = "add_update"  # the original's behaviour
    MIRROR = "mirror"  # also take out members who left the segments


class RemovalMode(StrEnum):
    DELETE = "delete"
    UNSUBSCRIBE = "unsubscribe"  # Campaign Monitor only; Constant Contact removes list membership


class ScheduleMode(StrEnum):
    SYSTEM = "system"  # with every scheduled system refresh (default)
    CRON = "cron"
    OFF = "off"


class Export(Base):
    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    # None once detached: the export is kept, inactive, and shows "No connection".
    connection_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("connections.id", ondelete="SET NULL"), index=True
    )
    list_id: Mapped[str] = mapped_column(sa.String(64))
    list_name: Mapped[str] = mapped_column(sa.String(300), default="")
    email_column: Mapped[str] = mapped_column(sa.String(200))
    # [{"column": "first_name", "target": "first_name"}, {"column": "city", "target": "[City]"}]
    attributes: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    create_missing_fields: Mapped[bool] = mapped_column(default=False)
    consent_to_track: Mapped[str] = mapped_column(
        sa.String(20), default="Unchanged"
    )  # Yes/No/Unchanged/column
    consent_column: Mapped[str | None] = mapped_column(sa.String(200))
    sync_mode: Mapped[SyncMode] = mapped_column(str_enum(SyncMode), default=SyncMode.ADD_UPDATE)
    removal_mode: Mapped[RemovalMode] = mapped_column(str_enum(RemovalMode), default=RemovalMode.DELETE)
    resubscribe: Mapped[bool] = mapped_column(default=False)
    schedule_mode: Mapped[ScheduleMode] = mapped_column(str_enum(ScheduleMode), default=ScheduleMode.SYSTEM)
    cron: Mapped[str | None] = mapped_column(sa.String(120))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ExportSegment(Base):
    __tablename__ = "export_segments"

    export_id: Mapped[int] = mapped_column(sa.ForeignKey("exports.id", ondelete="CASCADE"), primary_key=True)
    # RESTRICT: a segment cannot be deleted while an export uses it.
    segment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("segments.id", ondelete="RESTRICT"), primary_key=True, index=True
    )


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    SUCCEEDED_WITH_REJECTIONS = "succeeded_with_rejections"
    FAILED_RETRY = "failed_retry"  # failed (will retry): resumed by a worker at next_attempt_at
    FAILED = "failed"  # failed (permanent)
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # a dependency failed (segment refresh, connection)
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # the mirror guard stopped a mass removal


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED_RETRY)


class RunPhase(StrEnum):
    SNAPSHOT = "snapshot"
    PLAN = "plan"
    SEND = "send"
    FINISH = "finish"


class Trigger(StrEnum):
    SCHEDULE = "schedule"  # system refresh or the export's own cron
    ON_DEMAND = "on_demand"


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # Several scheduler processes never enqueue the same scheduled run twice.
        sa.UniqueConstraint("export_id", "scheduled_for"),
        sa.Index("ix_runs_claim", "status", "next_attempt_at"),
        # An export's runs newest first, and its newest run, by an index seek (not a year of them).
        sa.Index("ix_runs_export_id_id", "export_id", "id"),
        # One active run per export, enforced by the database itself (a partial unique index).
        sa.Index(
            "uq_runs_one_active",
            "export_id",
            unique=True,
            sqlite_where=sa.text("status IN ('queued', 'running', 'failed_retry')"),
            postgresql_where=sa.text("status IN ('queued', 'running', 'failed_retry')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    export_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("exports.id", ondelete="SET NULL")
    )  # indexed with id: ix_runs_export_id_id
    export_name: Mapped[str] = mapped_column(sa.String(200))  # kept when the export is removed
    trigger: Mapped[Trigger] = mapped_column(str_enum(Trigger))
    triggered_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dry_run: Mapped[bool] = mapped_column(default=False)
    full_resync: Mapped[bool] = mapped_column(default=False)
    confirm_removals: Mapped[bool] = mapped_column(default=False)
    status: Mapped[RunStatus] = mapped_column(str_enum(RunStatus), default=RunStatus.QUEUED)
    phase: Mapped[RunPhase | None] = mapped_column(str_enum(RunPhase))
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    attempt: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Progress of the send phase.
    batches_total: Mapped[int] = mapped_column(default=0)
    batches_done: Mapped[int] = mapped_column(default=0)
    rows_to_send: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    rows_sent: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    send_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Counts: every member ends as exactly one of these (docs/exports-and-runs.md, "Runs").
    profiles: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # rows the segments hold
    invalid: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    new: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    unchanged: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    removed: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    skipped: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    plan: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # planned counts + samples (dry run)
    error_code: Mapped[str | None] = mapped_column(sa.String(60))
    error: Mapped[str | None] = mapped_column(sa.Text)


class MemberAction(StrEnum):
    NEW = "new"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    REMOVE = "remove"
    INVALID = "invalid"


RARE = (Outcome.REMOVED, Outcome.REJECTED, Outcome.SKIPPED, Outcome.INVALID)  # a filter on the run page
RARE_OUTCOMES = f"outcome IN ({', '.join(repr(str(o)) for o in RARE)})"  # ix_run_members_rare_outcome


class RunMember(Base):
    __tablename__ = "run_members"
    # A run's rows are found by (run_id, seq), the primary key — the rows to send come first — and
    # a search by email scans one run's rows. A million rows are written per run, so the only
    # secondary index is partial: the rows with a rarer outcome (a filter on the run page), which
    # the rows sent as planned never enter.
    __table_args__ = (
        sa.Index(
            "ix_run_members_rare_outcome",
            "run_id",
            "outcome",
            "seq",
            sqlite_where=sa.text(RARE_OUTCOMES),
            postgresql_where=sa.text(RARE_OUTCOMES),
        ),
    )
    # No foreign key either: PostgreSQL checks one row by row (a trigger per inserted row), which
    # doubled the cost of a checkpoint; runs are never deleted, and their rows are pruned by run.

    run_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    email: Mapped[str] = mapped_column(sa.String(320))  # normalised; the raw value when invalid
    profile_key: Mapped[str | None] = mapped_column(sa.Text)
    hash: Mapped[str | None] = mapped_column(sa.String(32))  # of the mapped fields
    payload: Mapped[str | None] = mapped_column(sa.Text)  # JSON of the mapped fields
    action: Mapped[MemberAction] = mapped_column(str_enum(MemberAction))
    outcome: Mapped[Outcome | None] = mapped_column(str_enum(Outcome))
    code: Mapped[str | None] = mapped_column(sa.String(40))
    message: Mapped[str | None] = mapped_column(sa.Text)


class RunUnchanged(Base):
    """A run's unchanged members, kept compactly: a million of them in a few megabytes.

    Every member of a run has an outcome; the unchanged ones (most of them, run after run) are
    not written one row each: ``data`` holds zlib-compressed lines ``email<TAB>profile key`` in
    seq order, the first being ``first_seq``. ``exports.runs`` reads them beside ``run_members``.
    """

    __tablename__ = "run_unchanged"

    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    first_seq: Mapped[int] = mapped_column(sa.BigInteger)
    count: Mapped[int] = mapped_column(sa.BigInteger)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class RunSnapshot(Base):
    """A run's snapshot (its ``members``, as Parquet in parts), kept while the run sends from a
    plan that is not yet stored in full: an interrupted run plans again from the same snapshot.

    Deleted once the whole plan is stored, and when the run ends.
    """

    __tablename__ = "run_snapshots"

    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    part: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
    meta: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # on part 0: what the members hold


class Delivered(Base):
    """What the export last delivered: one row per email in its list.

    No foreign key to ``exports`` (each checkpoint upserts a thousand rows, and PostgreSQL would
    check each): removing an export deletes its rows (``exports.service.remove``)."""

    __tablename__ = "delivered"

    export_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    email: Mapped[str] = mapped_column(sa.String(320), primary_key=True)
    hash: Mapped[str] = mapped_column(sa.String(32))
    profile_key: Mapped[str | None] = mapped_column(sa.Text)
    run_id: Mapped[int | None] = mapped_column(sa.BigInteger)  # the run that delivered it last
