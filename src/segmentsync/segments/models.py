"""Segments (a named rule over profile columns) and the history of their refreshes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from segmentsync.db import Base, UTCDateTime, utcnow


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    rules: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # a segments.rules.Group, as JSON
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    member_count: Mapped[int | None] = mapped_column(sa.BigInteger)  # as of the last refresh
    last_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last successful one
    last_refresh_ms: Mapped[int | None] = mapped_column()  # how long it took
    last_refresh_error: Mapped[str | None] = mapped_column(sa.Text)  # the latest attempt's, if it failed


class SegmentRefresh(Base):
    __tablename__ = "segment_refreshes"

    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(sa.ForeignKey("segments.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int] = mapped_column(default=0)
    member_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    error: Mapped[str | None] = mapped_column(sa.Text)
