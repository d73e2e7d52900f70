"""The profile source: its columns and types (for the rule builder and the email-column picker)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from segmentsync.api.deps import RuntimeDep, require
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action
from segmentsync.profiles.source import redact

router = APIRouter(prefix="/profiles", tags=["profiles"])
Viewer = Annotated[User, Depends(require(Action.PROFILES_VIEW))]


class ColumnOut(BaseModel):
    name: str
    engine_type: str
    type: str  # string, integer, float, boolean, date, timestamp, other


class SchemaOut(BaseModel):
    source: str  # the profile source URL, without its password
    table: str
    key: str
    columns: list[ColumnOut]
    rows: int


@router.get("/schema", summary="The profile table's columns and types, and its row count")
def profile_schema(runtime: RuntimeDep, actor: Viewer) -> SchemaOut:
    source = runtime.profiles
    settings = runtime.settings
    return SchemaOut(
        source=redact(settings.resolved_profiles_url),
        table=settings.profiles_table,
        key=source.key,
        columns=[ColumnOut(name=n, engine_type=e, type=t.value) for n, e, t in source.describe()],
        rows=source.row_count(),
    )
