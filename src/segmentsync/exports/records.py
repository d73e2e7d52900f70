"""Reading exports: by id or name, their connection, the user's permission, the audited view."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.auth.models import User
from segmentsync.auth.policy import Action, check
from segmentsync.connections.models import Connection
from segmentsync.db import id_from_text
from segmentsync.errors import NotFound
from segmentsync.exports.grants import Permission, permission, require_edit
from segmentsync.exports.models import Export, ExportSegment


def get(*, session: Session, export_id: int, actor: User) -> Export:
    check(actor, Action.EXPORTS_VIEW)
    export = session.get(Export, export_id)
    if export is None:
        raise NotFound("there is no export with id %(export_id)s", params={"export_id": export_id})
    return export


def find(*, session: Session, key: str, actor: User) -> Export:
    """An export by id or by name (the command line's way of naming one)."""
    check(actor, Action.EXPORTS_VIEW)
    export = session.scalar(sa.select(Export).where(Export.name == key.strip()))
    if export is None and (number := id_from_text(key)) is not None:
        export = session.get(Export, number)
    if export is None:
        raise NotFound("there is no export named %(key)s", params={"key": repr(key)}, field="name")
    return export


def connection_of(session: Session, export: Export) -> Connection | None:
    return session.get(Connection, export.connection_id) if export.connection_id is not None else None


def permission_on(session: Session, export: Export, actor: User) -> Permission:
    return permission(actor, connection_of(session, export))


def require_edit_on(session: Session, export: Export, actor: User) -> None:
    check(actor, Action.EXPORTS_EDIT)
    require_edit(actor, connection_of(session, export), export.name)


def segment_ids(session: Session, export_id: int) -> list[int]:
    return list(
        session.scalars(
            sa.select(ExportSegment.segment_id)
            .where(ExportSegment.export_id == export_id)
            .order_by(ExportSegment.segment_id)
        )
    )


def audited(session: Session, export: Export) -> dict[str, Any]:
    """The audited view of an export (the form's fields)."""
    return {
        "name": export.name,
        "connection_id": export.connection_id,
        "list_id": export.list_id,
        "list_name": export.list_name,
        "email_column": export.email_column,
        "attributes": [dict(item) for item in export.attributes],
        "create_missing_fields": export.create_missing_fields,
        "consent_to_track": export.consent_to_track,
        "consent_column": export.consent_column,
        "segment_ids": segment_ids(session, export.id),
        "sync_mode": export.sync_mode.value,
        "removal_mode": export.removal_mode.value,
        "resubscribe": export.resubscribe,
        "schedule_mode": export.schedule_mode.value,
        "cron": export.cron,
        "timezone": export.timezone,
    }
