"""The one RBAC policy table: role × action → allowed.

Used by the API routes, the web views and the CLI alike; a test walks every route with every role
and checks the answer against this table. Object-level rules (a contributor may edit an export
only on a connection shared with contributors) live in the services, on top of this table.
"""

from __future__ import annotations

from enum import StrEnum

from segmentsync.auth.models import Role, User
from segmentsync.errors import Forbidden

V, C, A = Role.VIEWER, Role.CONTRIBUTOR, Role.ADMIN
EVERYONE = frozenset({V, C, A})
CONTRIBUTORS = frozenset({C, A})
ADMINS = frozenset({A})


class Action(StrEnum):
    PROFILES_VIEW = "profiles.view"
    SEGMENTS_VIEW = "segments.view"
    SEGMENTS_EDIT = "segments.edit"
    SEGMENTS_SQL = "segments.sql"  # write a segment's SQL (an admin may narrow it to admins)
    SEGMENTS_SETTINGS = "segments.settings"  # the dbt manifest; who may write SQL segments
    CONNECTIONS_LIST = "connections.list"  # display name and type only (contributors: shared ones)
    CONNECTIONS_MANAGE = "connections.manage"  # settings, create, edit, remove, authenticate
    EXPORTS_VIEW = "exports.view"
    EXPORTS_EDIT = "exports.edit"
    EXPORTS_RUN = "exports.run"
    RUNS_VIEW = "runs.view"
    RUNS_CANCEL = "runs.cancel"
    SCHEDULE_VIEW = "schedule.view"
    SCHEDULE_EDIT = "schedule.edit"
    SYSTEM_STATUS = "system.status"
    USERS_MANAGE = "users.manage"
    AUDIT_VIEW = "audit.view"
    NOTIFICATIONS_VIEW = "notifications.view"
    WEBHOOKS_MANAGE = "webhooks.manage"
    OWN_ACCOUNT = "own.account"  # own profile, language, password and API tokens


POLICY: dict[Action, frozenset[Role]] = {
    Action.PROFILES_VIEW: EVERYONE,
    Action.SEGMENTS_VIEW: EVERYONE,
    Action.SEGMENTS_EDIT: CONTRIBUTORS,
    Action.SEGMENTS_SQL: CONTRIBUTORS,
    Action.SEGMENTS_SETTINGS: ADMINS,
    Action.CONNECTIONS_LIST: CONTRIBUTORS,
    Action.CONNECTIONS_MANAGE: ADMINS,
    Action.EXPORTS_VIEW: EVERYONE,
    Action.EXPORTS_EDIT: CONTRIBUTORS,
    Action.EXPORTS_RUN: CONTRIBUTORS,
    Action.RUNS_VIEW: EVERYONE,
    Action.RUNS_CANCEL: CONTRIBUTORS,
    Action.SCHEDULE_VIEW: EVERYONE,
    Action.SCHEDULE_EDIT: ADMINS,
    Action.SYSTEM_STATUS: EVERYONE,
    Action.USERS_MANAGE: ADMINS,
    Action.AUDIT_VIEW: ADMINS,
    Action.NOTIFICATIONS_VIEW: ADMINS,
    Action.WEBHOOKS_MANAGE: ADMINS,
    Action.OWN_ACCOUNT: EVERYONE,
}


# What each action covers, for the docs and the UI.
HELP: dict[Action, str] = {
    Action.PROFILES_VIEW: "see the profile source's columns and sample profiles",
    Action.SEGMENTS_VIEW: "see segments, their rules and member counts",
    Action.SEGMENTS_EDIT: "create, edit, refresh and remove segments",
    Action.SEGMENTS_SQL: "write a SQL segment's query (an admin may restrict this to admins)",
    Action.SEGMENTS_SETTINGS: "set the dbt manifest and whether only admins may write SQL segments",
    Action.CONNECTIONS_LIST: "see connections' display name and type (contributors: shared ones only)",
    Action.CONNECTIONS_MANAGE: "create, edit, authenticate and remove connections; see their settings",
    Action.EXPORTS_VIEW: "see exports",
    Action.EXPORTS_EDIT: "create, edit, duplicate, detach and remove exports (contributors: on shared connections)",
    Action.EXPORTS_RUN: "run and dry-run exports",
    Action.RUNS_VIEW: "see runs, their progress and per-row outcomes",
    Action.RUNS_CANCEL: "cancel a run",
    Action.SCHEDULE_VIEW: "see the system refresh schedule",
    Action.SCHEDULE_EDIT: "change the system refresh schedule",
    Action.SYSTEM_STATUS: "see system status and metrics",
    Action.USERS_MANAGE: "create users, change roles, deactivate, manage anyone's API tokens",
    Action.AUDIT_VIEW: "read the audit log",
    Action.NOTIFICATIONS_VIEW: "read notifications (e.g. runs that failed permanently)",
    Action.WEBHOOKS_MANAGE: "add, change, test and remove webhook endpoints; see and redeliver their deliveries",
    Action.OWN_ACCOUNT: "sign out, change your own name, language, password and API tokens",
}


def markdown_table() -> str:
    """The table in Markdown; docs/api.md holds a copy that a test keeps identical."""
    roles = (V, C, A)
    lines = [
        "| action | what it covers | " + " | ".join(role.value for role in roles) + " |",
        "|---|---|" + ":-:|" * len(roles),
    ]
    for action in Action:
        marks = " | ".join("✓" if role in POLICY[action] else "–" for role in roles)
        lines.append(f"| `{action.value}` | {HELP[action]} | {marks} |")
    return "\n".join(lines) + "\n"


def allowed(role: Role, action: Action) -> bool:
    return role in POLICY[action]


def check(user: User, action: Action) -> None:
    """Raise Forbidden unless the (active) user's role allows the action."""
    if not user.is_active:
        raise Forbidden("this account is deactivated", code="deactivated")
    if not allowed(user.role, action):
        raise Forbidden(
            "your role (%(role)s) does not allow %(action)s",
            params={"role": user.role.value, "action": action.value},
            code="forbidden",
            details={"action": action.value, "role": user.role.value},
        )
