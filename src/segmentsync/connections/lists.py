"""What a stored connection sees on its platform: verify, lists (the picker), one list, its fields.

Each call opens the connection's destination, and when the platform refuses the credentials the
connection is marked "needs attention" with the platform's message (in its own transaction, so
the mark stays even though the caller's request fails). Call these outside any transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from segmentsync.connections import access, service
from segmentsync.connections.destination import destination_for
from segmentsync.connections.models import Connection
from segmentsync.connections.schemas import FieldOut, ListOut
from segmentsync.db import transaction
from segmentsync.destinations.base import AccountInfo, Destination
from segmentsync.errors import ConfigError
from segmentsync.runtime import Runtime

T = TypeVar("T")


def _call(runtime: Runtime, connection: Connection, work: Callable[[Destination], T]) -> T:
    destination = destination_for(runtime=runtime, connection=connection)
    try:
        return work(destination)
    except ConfigError as exc:
        if access.is_auth_failure(exc):
            note_auth_failure(runtime=runtime, connection_id=connection.id, message=exc.message)
        raise
    finally:
        destination.close()


def note_auth_failure(*, runtime: Runtime, connection_id: int, message: str) -> None:
    """Mark the connection "needs attention" in a transaction of its own."""
    with transaction(runtime.sessions) as session:
        connection = session.get(Connection, connection_id)
        if connection is not None:
            service.mark_needs_attention(session=session, connection=connection, message=message)


def verify(*, runtime: Runtime, connection: Connection) -> AccountInfo:
    """Check the stored credentials; a connection that passes is OK again."""
    account = _call(runtime, connection, lambda d: d.verify())
    with transaction(runtime.sessions) as session:
        fresh = session.get(Connection, connection.id)
        if fresh is not None:
            service.mark_ok(session=session, connection=fresh)
    return account


def lists(*, runtime: Runtime, connection: Connection) -> list[ListOut]:
    found = _call(runtime, connection, lambda d: d.lists())
    return [ListOut(list_id=i.list_id, name=i.name, member_count=i.member_count) for i in found]


def describe(*, runtime: Runtime, connection: Connection, list_id: str) -> ListOut:
    info = _call(runtime, connection, lambda d: d.describe_list(list_id))
    return ListOut(list_id=info.list_id, name=info.name, member_count=info.member_count)


def custom_fields(*, runtime: Runtime, connection: Connection, list_id: str) -> list[FieldOut]:
    found = _call(runtime, connection, lambda d: d.custom_fields(list_id))
    return [FieldOut(key=f.key, name=f.name, type=f.type.value, options=list(f.options)) for f in found]
