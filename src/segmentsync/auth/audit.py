"""The audit log: every change, who made it and when, with secrets masked."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.auth.models import AuditEntry, User

MASK = "••••••"
SECRET_WORDS = ("secret", "password", "token", "api_key", "apikey", "code_verifier", "authorization")


def mask(value: Any) -> Any:
    """A copy with the values of secret-looking keys replaced by a mask, at any depth."""
    if isinstance(value, Mapping):
        return {
            key: (MASK if any(word in str(key).lower() for word in SECRET_WORDS) else mask(item))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask(item) for item in value]
    return value


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    object_type: str,
    object_id: object = None,
    object_label: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    ip: str | None = None,
    at: datetime | None = None,
    actor_label: str | None = None,
) -> AuditEntry:
    """Add an audit entry to the session's transaction (committed with the change it describes).

    ``actor`` None means the system (scheduler, worker); ``actor_label`` overrides the label
    shown for the actor (e.g. "cli", or the email typed in a failed sign-in). ``at`` defaults
    to now (pass the runtime's clock where there is one).
    """
    entry = AuditEntry(
        actor_id=actor.id if actor else None,
        actor_label=actor_label or (actor.email if actor else "system"),
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        object_label=object_label,
        before=mask(dict(before)) if before is not None else None,
        after=mask(dict(after)) if after is not None else None,
        ip=ip,
    )
    if at is not None:
        entry.at = at
    session.add(entry)
    return entry


def query(
    *,
    actor_id: int | None = None,
    actor: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> sa.Select[AuditEntry]:
    """Entries matching every given filter, newest first.

    ``action`` is exact, or a prefix when it ends with ``*`` (``user.*``); ``actor`` matches the
    actor's label (their email, "system" or "cli"); ``since`` is inclusive, ``until`` exclusive.
    """
    stmt = sa.select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor_label == actor.strip().lower())
    if object_type is not None:
        stmt = stmt.where(AuditEntry.object_type == object_type)
    if object_id is not None:
        stmt = stmt.where(AuditEntry.object_id == object_id)
    if action is not None and action.endswith("*"):
        stmt = stmt.where(AuditEntry.action.startswith(action[:-1], autoescape=True))
    elif action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    return stmt
