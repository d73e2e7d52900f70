"""Connections: create (consent, verify, export user), list, edit, remove and detach (docs/connections.md).

Every function checks the policy table itself (the API, the web views and the CLI share it),
takes the session explicitly and records an audit entry for every change. Functions that talk to
the platform also take the runtime (vault, platform URLs); the OAuth redirect flow lives in
:mod:`segmentsync.connections.oauth_flow`, what the run engine needs in
:mod:`segmentsync.connections.access`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.auth import audit
from segmentsync.auth.models import Role, User
from segmentsync.auth.policy import Action, check
from segmentsync.auth.service import export_user_problem
from segmentsync.connections import access

# What the run engine needs, re-exported here with the rest of the connection services.
from segmentsync.connections.access import credentials_for as credentials_for
from segmentsync.connections.destination import destination_for as destination_for
from segmentsync.connections.models import Connection, ConnectionStatus, ConnectionType
from segmentsync.connections.outputs import view as view
from segmentsync.connections.outputs import views as views
from segmentsync.connections.schemas import (
    ConnectionCreate,
    ConnectionDraft,
    ConnectionUpdate,
)
from segmentsync.db import id_from_text
from segmentsync.errors import Conflict, Forbidden, Invalid, NotFound
from segmentsync.exports.models import Export
from segmentsync.notifications import hooks
from segmentsync.runtime import Runtime

OBJECT = "connection"


# ---------------------------------------------------------------- reading


def connection_query(*, actor: User, type: ConnectionType | None = None) -> sa.Select[Connection]:
    """The connections ``actor`` may see, by name: admins all, contributors the shared ones."""
    check(actor, Action.CONNECTIONS_LIST)
    query = sa.select(Connection).order_by(Connection.name)
    if actor.role is not Role.ADMIN:
        query = query.where(Connection.shared_with_contributors.is_(True))
    if type is not None:
        query = query.where(Connection.type == type)
    return query


def get(*, session: Session, connection_id: int, actor: User) -> Connection:
    """One connection ``actor`` may see (a contributor asking for an unshared one gets NotFound)."""
    check(actor, Action.CONNECTIONS_LIST)
    connection = session.get(Connection, connection_id)
    if connection is None or not _visible(connection, actor):
        raise NotFound("no connection with id %(connection_id)s", params={"connection_id": connection_id})
    return connection


def get_for_admin(*, session: Session, connection_id: int, actor: User) -> Connection:
    check(actor, Action.CONNECTIONS_MANAGE)
    return get(session=session, connection_id=connection_id, actor=actor)


def get_by_name(*, session: Session, name: str, actor: User) -> Connection:
    """A connection by its name; one ``actor`` may not see is answered as an unknown name.

    (Answering with the id lookup's "no connection with id 7" told a contributor the id of an
    admins-only connection.)
    """
    check(actor, Action.CONNECTIONS_LIST)
    connection = session.scalar(sa.select(Connection).where(Connection.name == name.strip()))
    if connection is None or not _visible(connection, actor):
        raise NotFound("no connection named %(name)s", params={"name": repr(name)}, field="name")
    return connection


def find(*, session: Session, key: str, actor: User) -> Connection:
    """A connection by name or, for a key of ASCII digits, by id (the command line's way)."""
    number = id_from_text(key)
    if number is not None:
        return get(session=session, connection_id=number, actor=actor)
    return get_by_name(session=session, name=key, actor=actor)


def _visible(connection: Connection, actor: User) -> bool:
    return actor.role is Role.ADMIN or connection.shared_with_contributors


def exports_using(*, session: Session, connection_id: int) -> list[Export]:
    return list(
        session.scalars(sa.select(Export).where(Export.connection_id == connection_id).order_by(Export.name))
    )


def snapshot(connection: Connection) -> dict[str, Any]:
    """The audited view of a connection (settings, never secrets)."""
    return {
        "name": connection.name,
        "type": connection.type.value,
        "shared_with_contributors": connection.shared_with_contributors,
        "consent_by_id": connection.consent_by_id,
        "consent_at": connection.consent_at.isoformat() if connection.consent_at else None,
        "export_user_id": connection.export_user_id,
        "settings": dict(connection.settings),
        "status": connection.status.value,
    }


# ---------------------------------------------------------------- creating and editing


def check_draft(*, session: Session, draft: ConnectionDraft, actor: User) -> None:
    """Steps 1–4 of the setup, checked before anything is sent to the platform."""
    check(actor, Action.CONNECTIONS_MANAGE)
    if not draft.consent:
        raise Invalid(
            "tick 'I agree' under Data privacy and compliance: without consent the connection "
            "cannot be saved",
            code="consent_required",
            field="consent",
        )
    _check_name_free(session, draft.name)


def _check_name_free(session: Session, name: str, *, except_id: int | None = None) -> None:
    query = sa.select(Connection.id).where(Connection.name == name)
    if except_id is not None:
        query = query.where(Connection.id != except_id)
    if session.scalar(query) is not None:
        raise Conflict(
            "a connection named %(name)s already exists",
            params={"name": repr(name)},
            code="name_taken",
            field="name",
        )


def _flush_named(session: Session, name: str) -> None:
    """Flush; the unique name can still clash with a connection saved meanwhile by someone else."""
    try:
        session.flush()
    except sa.exc.IntegrityError as exc:
        raise Conflict(
            "a connection named %(name)s already exists",
            params={"name": repr(name)},
            code="name_taken",
            field="name",
        ) from exc


def create(
    *, session: Session, runtime: Runtime, data: ConnectionCreate, actor: User, ip: str | None = None
) -> Connection:
    """Create a connection authenticated with an API key or OAuth tokens, verified first."""
    check_draft(session=session, draft=data, actor=actor)
    verified = access.authenticate(
        runtime=runtime,
        type=data.type,
        auth=data.auth,
        api_url=str(data.api_url) if data.api_url else None,
        oauth_url=str(data.oauth_url) if data.oauth_url else None,
    )
    return save_new(session=session, runtime=runtime, draft=data, verified=verified, actor=actor, ip=ip)


def save_new(
    *,
    session: Session,
    runtime: Runtime,
    draft: ConnectionDraft,
    verified: access.Verified,
    actor: User,
    consent_at: datetime | None = None,
    ip: str | None = None,
) -> Connection:
    """Save a connection whose credentials were verified (step 7); the consent is recorded."""
    check_draft(session=session, draft=draft, actor=actor)
    now = runtime.clock()
    connection = Connection(
        name=draft.name,
        type=draft.type,
        shared_with_contributors=draft.shared_with_contributors,
        consent_by_id=actor.id,
        consent_at=consent_at or now,
        export_user_id=actor.id if draft.add_me_as_export_user else None,
        created_by_id=actor.id,
        status=ConnectionStatus.OK,
        secrets_version=1,
    )
    access.store(connection, verified, vault=runtime.vault)
    session.add(connection)
    _flush_named(session, connection.name)
    audit.record(
        session, actor=actor, action="connection.create", object_type=OBJECT, object_id=connection.id,
        object_label=connection.name, after=snapshot(connection), ip=ip,
    )  # fmt: skip
    return connection


def update(
    *,
    session: Session,
    runtime: Runtime,
    connection: Connection,
    data: ConnectionUpdate,
    actor: User,
    ip: str | None = None,
) -> Connection:
    """Rename, change who can use it (existing exports are kept), or re-authenticate."""
    check(actor, Action.CONNECTIONS_MANAGE)
    before = snapshot(connection)
    if data.name is not None and data.name != connection.name:
        _check_name_free(session, data.name, except_id=connection.id)
        connection.name = data.name
    if data.shared_with_contributors is not None:
        connection.shared_with_contributors = data.shared_with_contributors
    if data.auth is not None:
        settings = connection.settings
        verified = access.authenticate(
            runtime=runtime,
            type=connection.type,
            auth=data.auth,
            api_url=settings.get("api_url"),
            oauth_url=settings.get("oauth_url"),
        )
        reauthenticated(session=session, runtime=runtime, connection=connection, verified=verified)
    _flush_named(session, connection.name)
    action = "connection.reauthenticate" if data.auth is not None else "connection.update"
    audit.record(
        session, actor=actor, action=action, object_type=OBJECT, object_id=connection.id,
        object_label=connection.name, before=before, after=snapshot(connection), ip=ip,
    )  # fmt: skip
    return connection


def reauthenticated(
    *, session: Session, runtime: Runtime, connection: Connection, verified: access.Verified
) -> None:
    """Store new verified credentials; the connection is OK again."""
    access.store(connection, verified, vault=runtime.vault)
    # A process refreshing the old tokens right now finds the version moved and takes these.
    connection.secrets_version = connection.secrets_version + 1
    connection.status = ConnectionStatus.OK
    connection.status_message = None


def add_export_user(
    *, session: Session, connection: Connection, actor: User, ip: str | None = None
) -> Connection:
    """ "Add yourself as export user": exports on this connection run on behalf of ``actor``."""
    check(actor, Action.CONNECTIONS_MANAGE)
    problem = export_user_problem(actor)
    if problem is not None:  # check() passed, so this is a defence in depth
        raise Forbidden(problem, code="not_an_active_admin")
    before = snapshot(connection)
    connection.export_user_id = actor.id
    session.flush()
    audit.record(
        session, actor=actor, action="connection.export_user", object_type=OBJECT,
        object_id=connection.id, object_label=connection.name, before=before,
        after=snapshot(connection), ip=ip,
    )  # fmt: skip
    return connection


# ---------------------------------------------------------------- removing


def remove(*, session: Session, connection: Connection, actor: User, ip: str | None = None) -> None:
    """Remove a connection; refused while exports use it (the answer lists them)."""
    check(actor, Action.CONNECTIONS_MANAGE)
    in_use = exports_using(session=session, connection_id=connection.id)
    if in_use:
        names = ", ".join(repr(e.name) for e in in_use)
        raise Conflict(
            "connection %(connection_name)s is used by %(count)s export(s): %(names)s; detach them (they are kept, with no connection) or remove them first",
            params={"connection_name": repr(connection.name), "count": len(in_use), "names": names},
            code="connection_in_use",
            details={"exports": [{"id": e.id, "name": e.name} for e in in_use]},
        )
    audit.record(
        session, actor=actor, action="connection.remove", object_type=OBJECT, object_id=connection.id,
        object_label=connection.name, before=snapshot(connection), ip=ip,
    )  # fmt: skip
    session.delete(connection)
    session.flush()


def detach(
    *,
    session: Session,
    connection: Connection,
    actor: User,
    export_ids: list[int] | None = None,
    ip: str | None = None,
) -> list[Export]:
    """Detach exports from the connection: kept, inactive, "No connection", re-attachable."""
    check(actor, Action.CONNECTIONS_MANAGE)
    exports = exports_using(session=session, connection_id=connection.id)
    if export_ids is not None:
        unknown = set(export_ids) - {e.id for e in exports}
        if unknown:
            raise Invalid(
                "export(s) %(value)s do not use connection %(connection_name)s",
                params={"value": sorted(unknown), "connection_name": repr(connection.name)},
                field="export_ids",
            )
        exports = [e for e in exports if e.id in set(export_ids)]
    for export in exports:
        export.connection_id = None
        audit.record(
            session, actor=actor, action="export.detach", object_type="export", object_id=export.id,
            object_label=export.name, before={"connection_id": connection.id, "connection": connection.name},
            after={"connection_id": None}, ip=ip,
        )  # fmt: skip
    session.flush()
    return exports


# ---------------------------------------------------------------- status


def mark_needs_attention(*, session: Session, connection: Connection, message: str) -> None:
    """The platform refused the credentials (or the export user cannot run): show it to admins."""
    if connection.status is ConnectionStatus.NEEDS_ATTENTION and connection.status_message == message:
        return
    before = snapshot(connection)
    newly = connection.status is not ConnectionStatus.NEEDS_ATTENTION
    connection.status = ConnectionStatus.NEEDS_ATTENTION
    connection.status_message = message
    session.flush()
    if newly:
        hooks.connection_needs_attention(session, connection, message)
    audit.record(
        session, actor=None, action="connection.needs_attention", object_type=OBJECT,
        object_id=connection.id, object_label=connection.name, before=before,
        after={**snapshot(connection), "status_message": message},
    )  # fmt: skip


def mark_ok(*, session: Session, connection: Connection) -> None:
    if connection.status is not ConnectionStatus.OK:
        connection.status = ConnectionStatus.OK
        connection.status_message = None
        session.flush()


def rotate_secrets(*, session: Session, runtime: Runtime, actor: User) -> int:
    """Re-encrypt every stored secret with the newest key; returns how many were re-encrypted."""
    check(actor, Action.CONNECTIONS_MANAGE)
    count = access.rotate_all(session=session, vault=runtime.vault)
    audit.record(
        session, actor=actor, action="connection.rotate_secrets", object_type=OBJECT,
        after={"re_encrypted": count},
    )  # fmt: skip
    return count
