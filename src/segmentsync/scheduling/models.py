"""The system refresh schedule and the record of each refresh."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from segmentsync.db import Base, UTCDateTime, utcnow


class SystemSchedule(Base):
    """A single row (id 1): off by default; daily or weekly, up to four times a day."""

    __tablename__ = "system_schedule"

    id: Mapped[int] = mapped_column(primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    frequency: Mapped[str] = mapped_column(sa.String(10), default="daily")  # daily | weekly
    weekdays: Mapped[list[int]] = mapped_column(sa.JSON, default=list)  # 0 = Monday (weekly only)
    times: Mapped[list[str]] = mapped_column(sa.JSON, default=list)  # ["06:00", "18:30"], ≤ 4
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SystemRefresh(Base):
    """One system refresh: segments refreshed, then the exports scheduled with it queued."""

    __tablename__ = "system_refreshes"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique: two scheduler processes never start the same refresh twice.
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime, unique=True)
    trigger: Mapped[str] = mapped_column(sa.String(20), default="schedule")  # schedule | on_demand
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(20), default="running")  # running|succeeded|failed
    details: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # segments refreshed, runs queued
    error: Mapped[str | None] = mapped_column(sa.Text)


class WorkerBeat(Base):
    """A worker that is alive (or was): it beats every third of the lease and deletes its row when
    it stops. ``/readyz`` and the ``segmentsync_workers_alive`` gauge count the recent beats."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)  # host:pid:random, as leases
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    run_id: Mapped[int | None] = mapped_column()  # the run it is executing (no key: runs may go)
