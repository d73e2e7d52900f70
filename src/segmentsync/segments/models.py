"""Segments (a rule over profile columns, a SQL query or a dbt model), their refreshes' history,
and the segment options an admin sets (the dbt manifest, who may write SQL segments)."""

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
    rules: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)  # kind rule: a segments.rules.Group
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    member_count: Mapped[int | None] = mapped_column(sa.BigInteger)  # as of the last refresh
    last_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last successful one
    last_refresh_ms: Mapped[int | None] = mapped_column()  # how long it took
    last_refresh_error: Mapped[str | None] = mapped_column(sa.Text)  # the latest attempt's, if it failed
    # (after the older columns: the order migration 0011 adds them in)
    kind: Mapped[str] = mapped_column(sa.String(10), default="rule", server_default="rule")  # rule|sql|dbt
    sql: Mapped[str | None] = mapped_column(sa.Text)  # kind sql: the query as written
    dbt_model: Mapped[str | None] = mapped_column(sa.String(300))  # kind dbt: the model's name


class SegmentRefresh(Base):
    __tablename__ = "segment_refreshes"

    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(sa.ForeignKey("segments.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int] = mapped_column(default=0)
    member_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    error: Mapped[str | None] = mapped_column(sa.Text)


class SegmentOptions(Base):
    """One row (id 1): what an admin sets for every segment."""

    __tablename__ = "segment_options"

    id: Mapped[int] = mapped_column(primary_key=True)
    dbt_manifest: Mapped[str | None] = mapped_column(sa.Text)  # a path or an http(s) URL
    sql_admins_only: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
