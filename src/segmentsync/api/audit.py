"""The audit log, newest first, filtered by actor, object, action and time (admins only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from segmentsync.api.deps import SessionDep, require
from segmentsync.api.pagination import KeyPageDep, Page, by_key, key_int, key_time
from segmentsync.auth import audit
from segmentsync.auth.models import AuditEntry, User
from segmentsync.auth.policy import Action
from segmentsync.auth.schemas import AuditOut
from segmentsync.errors import NotFound

router = APIRouter(prefix="/audit", tags=["audit"])
Auditor = Annotated[User, Depends(require(Action.AUDIT_VIEW))]


def _utc(value: datetime | None) -> datetime | None:
    """Times without a zone are taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get("", summary="List audit entries, newest first")
def list_entries(
    session: SessionDep,
    auditor: Auditor,
    page: KeyPageDep,
    actor_id: Annotated[int | None, Query(description="the acting user's id")] = None,
    actor: Annotated[str | None, Query(description='the actor\'s email, or "system" or "cli"')] = None,
    object_type: Annotated[str | None, Query(examples=["user", "connection", "export"])] = None,
    object_id: str | None = None,
    action: Annotated[str | None, Query(description="exact, or a prefix ending in * (user.*)")] = None,
    since: Annotated[datetime | None, Query(alias="from", description="from this time (inclusive)")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="before this time (exclusive)")] = None,
) -> Page[AuditOut]:
    query = audit.query(
        actor_id=actor_id,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        action=action,
        since=_utc(since),
        until=_utc(until),
    )
    rows, total, after = by_key(
        session, query, page, [AuditEntry.at, AuditEntry.id], _key, [key_time, key_int]
    )
    items = [AuditOut.model_validate(row) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset, next_cursor=after)


def _key(entry: AuditEntry) -> tuple[str, int]:
    return _utc(entry.at).isoformat(), entry.id  # type: ignore[union-attr]  # never None


@router.get("/{entry_id}", summary="Show one audit entry")
def get_entry(entry_id: int, session: SessionDep, auditor: Auditor) -> AuditOut:
    entry = session.get(AuditEntry, entry_id)
    if entry is None:
        raise NotFound(f"no audit entry with id {entry_id}")
    return AuditOut.model_validate(entry)
