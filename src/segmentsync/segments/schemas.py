"""What the segment service takes and gives back (the API, web views and CLI use these as is)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, computed_field

from segmentsync.segments.rules import Group

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


class SegmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description = ""
    rules: Group


class SegmentUpdate(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Description | None = None
    rules: Group | None = None


class SegmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    rules: Group
    created_by_id: int | None
    created_at: datetime
    updated_at: datetime
    member_count: int | None = Field(description="members as of the last successful refresh")
    last_refresh_at: datetime | None
    last_refresh_ms: int | None
    last_refresh_error: str | None = Field(description="the latest refresh's error, if it failed")

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented way to expose a property
    @property
    def rule_text(self) -> str:
        """The rule in words, e.g. ``country in ('PL', 'LV') AND total_spend > 100``."""
        return self.rules.describe()


class RefreshOut(BaseModel):
    segment_id: int
    segment_name: str
    started_at: datetime
    duration_ms: int
    member_count: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class PreviewOut(BaseModel):
    """The first members (ordered by the key) with the chosen columns; values as JSON."""

    segment_id: int | None
    columns: list[str]
    rows: list[dict[str, Any]]
    limit: int


class CountOut(BaseModel):
    segment_id: int | None
    member_count: int
