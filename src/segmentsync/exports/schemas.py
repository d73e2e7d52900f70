"""What goes in and out of exports and runs: the API bodies, the CLI's JSON and the UI form.

``ExportCreate`` is the export form (docs/exports-and-runs.md); ``ExportUpdate`` is the same with every field
optional (only the fields sent change). The service validates everything that needs the
database, the profile table or the platform; these models check only shapes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from segmentsync.connections.models import ConnectionStatus, ConnectionType
from segmentsync.exports.grants import Permission
from segmentsync.exports.models import (
    MemberAction,
    Outcome,
    RemovalMode,
    RunPhase,
    RunStatus,
    ScheduleMode,
    SyncMode,
    Trigger,
)

Consent = Literal["Yes", "No", "Unchanged", "column"]


class AttributeMap(BaseModel):
    """One more field sent with each member: a profile column → a field on the platform."""

    column: str = Field(min_length=1, max_length=200, description="the profile column")
    target: str = Field(
        min_length=1,
        max_length=200,
        description=(
            "Campaign Monitor: Name or a custom field ([City], City); "
            "Constant Contact: first_name, last_name or cf:<custom field name>"
        ),
    )


class ExportCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    connection_id: int = Field(description="a connection you may use (contributors: shared ones)")
    list_id: str = Field(
        min_length=1,
        max_length=64,
        description="Campaign Monitor list ID (32 hex characters) / Constant Contact list ID (UUID)",
    )
    email_column: str = Field(min_length=1, max_length=200, description="the profile column with the email")
    attributes: list[AttributeMap] = Field(default_factory=list, max_length=100)
    create_missing_fields: bool = Field(
        default=False, description="Campaign Monitor: create custom fields the list lacks, on save"
    )
    consent_to_track: Consent = Field(
        default="Unchanged", description="Campaign Monitor ConsentToTrack: Yes, No, Unchanged or column"
    )
    consent_column: str | None = Field(
        default=None, description="the profile column when consent is 'column'"
    )
    segment_ids: list[int] = Field(min_length=1, max_length=100, description="one or more segments")
    sync_mode: SyncMode = SyncMode.ADD_UPDATE
    removal_mode: RemovalMode = Field(
        default=RemovalMode.DELETE,
        description="mirror mode, Campaign Monitor: delete or unsubscribe; Constant Contact removes list membership",
    )
    resubscribe: bool = Field(
        default=False, description="resubscribe members who unsubscribed (off by default)"
    )
    schedule_mode: ScheduleMode = ScheduleMode.SYSTEM
    cron: str | None = Field(
        default=None, max_length=120, description="five-field cron, when schedule_mode is cron"
    )
    timezone: str = Field(default="UTC", max_length=64, description="time zone of the cron recurrence")


class ExportUpdate(BaseModel):
    """Only the fields sent change; the result is validated as a whole."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    connection_id: int | None = None
    list_id: str | None = Field(default=None, min_length=1, max_length=64)
    email_column: str | None = Field(default=None, min_length=1, max_length=200)
    attributes: list[AttributeMap] | None = Field(default=None, max_length=100)
    create_missing_fields: bool | None = None
    consent_to_track: Consent | None = None
    consent_column: str | None = None
    segment_ids: list[int] | None = Field(default=None, min_length=1, max_length=100)
    sync_mode: SyncMode | None = None
    removal_mode: RemovalMode | None = None
    resubscribe: bool | None = None
    schedule_mode: ScheduleMode | None = None
    cron: str | None = Field(default=None, max_length=120)
    timezone: str | None = Field(default=None, max_length=64)


class AttachIn(BaseModel):
    connection_id: int


class DuplicateIn(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200, description="default: Copy of …")


class RunStartIn(BaseModel):
    dry_run: bool = Field(default=False, description="stop after the plan and report what would happen")
    full_resync: bool = Field(default=False, description="send every member, changed or not")


# ---------------------------------------------------------------- out


class ConnectionRef(BaseModel):
    id: int
    name: str
    type: ConnectionType
    status: ConnectionStatus


class SegmentRef(BaseModel):
    id: int
    name: str
    member_count: int | None = Field(description="as of the segment's last refresh")
    last_refresh_at: datetime | None


class RunSummary(BaseModel):
    id: int
    status: RunStatus
    trigger: Trigger
    dry_run: bool
    created_at: datetime
    finished_at: datetime | None
    error: str | None


class ExportOut(BaseModel):
    id: int
    name: str
    connection: ConnectionRef | None = Field(description="None: detached (No connection)")
    type: ConnectionType = Field(description="the platform, also known for a detached export")
    list_id: str
    list_name: str
    email_column: str
    attributes: list[AttributeMap]
    create_missing_fields: bool
    consent_to_track: Consent
    consent_column: str | None
    segments: list[SegmentRef]
    sync_mode: SyncMode
    removal_mode: RemovalMode
    resubscribe: bool
    schedule_mode: ScheduleMode
    cron: str | None
    timezone: str
    schedule: str = Field(description="the schedule in words")
    next_run_at: datetime | None = Field(description="the next scheduled run, if any")
    status: str = Field(description="no_connection, never_run, or the status of the active or last run")
    permission: Permission = Field(description="your permission on this export")
    active_run: RunSummary | None
    last_run: RunSummary | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    # Filled in the answer to a save (create, edit, duplicate, attach), else None / empty.
    members: int | None = Field(default=None, description="profiles in the selected segments, counted now")
    warnings: list[str] = Field(default_factory=list)


class ExportRow(BaseModel):
    """One line of Data > Exports."""

    id: int
    name: str
    connection: str | None = Field(description="the connection's display name; None: No connection")
    connection_id: int | None
    type: ConnectionType
    status: str
    permission: Permission
    schedule: str
    last_run: RunSummary | None
    connection_used: str = Field(description="the connection runs use, as shown: its name or 'No connection'")


class RunAllOut(BaseModel):
    queued: list[RunSummary]
    skipped: list[dict[str, Any]] = Field(description="exports not queued: {export_id, name, reason}")


class RunCounts(BaseModel):
    profiles: int
    invalid: int
    new: int
    updated: int
    unchanged: int
    removed: int
    rejected: int
    skipped: int


class ProgressOut(BaseModel):
    phase: RunPhase | None
    batches_done: int
    batches_total: int
    rows_sent: int
    rows_to_send: int
    percent: float
    rows_per_second: float | None
    eta_seconds: float | None


class RunOut(BaseModel):
    id: int
    export_id: int | None = Field(description="None once the export was removed (its history is kept)")
    export_name: str
    trigger: Trigger
    triggered_by: str | None = Field(description="who ran it (email), None for the schedule")
    scheduled_for: datetime | None
    dry_run: bool
    full_resync: bool
    status: RunStatus
    cancel_requested: bool
    cancelling: bool = Field(
        description="cancel was asked while it runs: no new batch is sent; it ends cancelled once the "
        "batches in flight are back (an import the platform accepted cannot be taken back)"
    )
    attempt: int
    next_attempt_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    counts: RunCounts
    progress: ProgressOut
    plan: dict[str, Any] | None = Field(description="planned counts and samples (dry runs, mirror guard)")
    error_code: str | None
    error: str | None


class RunRowOut(BaseModel):
    seq: int
    email: str
    profile_key: str | None
    action: MemberAction
    outcome: Outcome | None = Field(description="None while pending")
    code: str | None
    message: str | None
