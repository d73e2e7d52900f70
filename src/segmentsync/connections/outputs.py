"""What a user is shown of connections: everything but secrets (admins), or name and type.

Secrets are write-only: no model here has a field that could hold one.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.auth.models import Role, User
from segmentsync.auth.service import export_user_problem
from segmentsync.connections.models import Connection
from segmentsync.connections.schemas import (
    ConnectionOut,
    ConnectionSettings,
    ConnectionSummary,
    ExportRef,
    UserRef,
)
from segmentsync.exports.models import Export


def views(
    *, session: Session, connections: list[Connection], actor: User
) -> list[ConnectionOut | ConnectionSummary]:
    """What ``actor`` may see of each connection: everything but secrets (admins), else name and type."""
    if actor.role is not Role.ADMIN:
        return [ConnectionSummary(id=c.id, name=c.name, type=c.type) for c in connections]
    ids = [c.id for c in connections]
    user_ids = {
        uid
        for c in connections
        for uid in (c.consent_by_id, c.export_user_id, c.created_by_id)
        if uid is not None
    }
    users = {u.id: u for u in session.scalars(sa.select(User).where(User.id.in_(user_ids)))}
    exports: dict[int, list[ExportRef]] = {i: [] for i in ids}
    rows = session.execute(
        sa.select(Export.connection_id, Export.id, Export.name)
        .where(Export.connection_id.in_(ids))
        .order_by(Export.name)
    )
    for connection_id, export_id, name in rows:
        if connection_id is not None:  # always: the query filters on it
            exports[connection_id].append(ExportRef(id=export_id, name=name))
    return [_admin_view(c, users, exports[c.id]) for c in connections]


def view(*, session: Session, connection: Connection, actor: User) -> ConnectionOut | ConnectionSummary:
    return views(session=session, connections=[connection], actor=actor)[0]


def _user_ref(users: dict[int, User], user_id: int | None) -> UserRef | None:
    user = users.get(user_id) if user_id is not None else None
    return UserRef(id=user.id, email=user.email, name=user.name) if user else None


def _admin_view(connection: Connection, users: dict[int, User], exports: list[ExportRef]) -> ConnectionOut:
    export_user = users.get(connection.export_user_id) if connection.export_user_id else None
    return ConnectionOut(
        id=connection.id,
        name=connection.name,
        type=connection.type,
        shared_with_contributors=connection.shared_with_contributors,
        consent_by=_user_ref(users, connection.consent_by_id),
        consent_at=connection.consent_at,
        export_user=_user_ref(users, connection.export_user_id),
        export_user_problem=export_user_problem(export_user),
        settings=ConnectionSettings.model_validate(connection.settings),
        secrets_stored=list(connection.settings.get("secrets_stored", [])),
        status=connection.status,
        status_message=connection.status_message,
        token_expires_at=connection.token_expires_at,
        exports=exports,
        created_by=_user_ref(users, connection.created_by_id),
        created_at=connection.created_at,
        updated_at=connection.updated_at,
    )
