"""Who may change or run an export: the role (policy table) and the export's connection.

Admins may edit every export. Contributors may edit and run exports on connections shared with
contributors (and detached exports, which have no connection until one is attached). Viewers
only view. Every export shows the current user's permission: "edit" or "view".
"""

from __future__ import annotations

from typing import Literal

from segmentsync.auth.models import Role, User
from segmentsync.auth.policy import Action, allowed
from segmentsync.connections.models import Connection
from segmentsync.errors import Forbidden

Permission = Literal["edit", "view"]


def permission(user: User, connection: Connection | None) -> Permission:
    if not user.is_active or not allowed(user.role, Action.EXPORTS_EDIT):
        return "view"
    if user.role is Role.ADMIN or connection is None or connection.shared_with_contributors:
        return "edit"
    return "view"


def require_edit(user: User, connection: Connection | None, export_name: str) -> None:
    if permission(user, connection) != "edit":
        raise Forbidden(
            "you may view the export “%(export_name)s” but not change or run it: its connection is for administrators",
            params={"export_name": export_name},
            code="export_forbidden",
        )
