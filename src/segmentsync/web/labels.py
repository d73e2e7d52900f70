"""Words the pages show for stored values (roles, statuses, modes) and for known error codes.

Every label is marked with ``N_`` for extraction and translated where it is shown.
"""

from __future__ import annotations

from typing import Any

from segmentsync.web.i18n import N_, Translator

LABELS: dict[str, dict[str, str]] = {
    "role": {"viewer": N_("Viewer"), "contributor": N_("Contributor"), "admin": N_("Administrator")},
    "connection_type": {"campaign_monitor": "Campaign Monitor", "constant_contact": "Constant Contact"},
    "connection_status": {"ok": N_("OK"), "needs_attention": N_("Needs attention")},
    "run_status": {
        "queued": N_("Queued"),
        "running": N_("Running"),
        "succeeded": N_("Succeeded"),
        "succeeded_with_rejections": N_("Succeeded with rejections"),
        "failed_retry": N_("Failed (will retry)"),
        "failed": N_("Failed (permanent)"),
        "cancelled": N_("Cancelled"),
        "skipped": N_("Skipped"),
        "awaiting_confirmation": N_("Awaiting confirmation"),
    },
    "phase": {"snapshot": N_("Snapshot"), "plan": N_("Plan"), "send": N_("Send"), "finish": N_("Finish")},
    "trigger": {"schedule": N_("Schedule"), "on_demand": N_("On demand")},
    "outcome": {
        "new": N_("New"),
        "updated": N_("Updated"),
        "unchanged": N_("Unchanged"),
        "removed": N_("Removed"),
        "invalid": N_("Invalid"),
        "rejected": N_("Rejected"),
        "skipped": N_("Skipped"),
        "pending": N_("Pending"),
    },
    "action": {
        "new": N_("New"),
        "update": N_("Update"),
        "unchanged": N_("Unchanged"),
        "remove": N_("Remove"),
        "invalid": N_("Invalid"),
    },
    "sync_mode": {"add_update": N_("Add and update"), "mirror": N_("Mirror")},
    "removal_mode": {"delete": N_("Delete"), "unsubscribe": N_("Unsubscribe")},
    "schedule_mode": {
        "system": N_("With every system refresh"),
        "cron": N_("Custom recurrence (cron)"),
        "off": N_("Off"),
    },
    "permission": {"edit": N_("Edit"), "view": N_("View")},
    "refresh_status": {"running": N_("Running"), "succeeded": N_("Succeeded"), "failed": N_("Failed")},
    "frequency": {"daily": N_("Daily"), "weekly": N_("Weekly")},
    "column_type": {
        "string": N_("Text"),
        "integer": N_("Whole number"),
        "float": N_("Number"),
        "boolean": N_("Yes/no"),
        "date": N_("Date"),
        "timestamp": N_("Date and time"),
        "other": N_("Other"),
    },
    "actor": {"system": N_("System"), "cli": N_("Command line")},
    "object_type": {
        "connection": N_("Connection"),
        "export": N_("Export"),
        "segment": N_("Segment"),
        "run": N_("Run"),
        "user": N_("User"),
        "api_token": N_("API token"),
        "system_schedule": N_("System schedule"),
        "notification": N_("Notification"),
        "session": N_("Session"),
    },
    # The verb of an audit action ("connection.create" → Created).
    "audit_verb": {
        "create": N_("Created"),
        "update": N_("Changed"),
        "remove": N_("Removed"),
        "delete": N_("Deleted"),
        "detach": N_("Detached"),
        "attach": N_("Attached"),
        "duplicate": N_("Duplicated"),
        "run_all": N_("Run all"),
        "reauthenticate": N_("Authenticated again"),
        "rotate_secrets": N_("Secrets re-encrypted"),
        "needs_attention": N_("Needs attention"),
        "export_user": N_("Export user set"),
        "set_role": N_("Role changed"),
        "set_password": N_("Password changed"),
        "reactivate": N_("Reactivated"),
        "deactivate": N_("Deactivated"),
        "end_sessions": N_("Signed out everywhere"),
        "refresh": N_("Refreshed"),
        "start": N_("Started"),
        "skip": N_("Skipped"),
        "cancel": N_("Cancelled"),
        "confirm_removals": N_("Removals confirmed"),
        "read": N_("Read"),
        "read_all": N_("All read"),
        "revoke": N_("Revoked"),
        "sign_in": N_("Signed in"),
        "sign_in_failed": N_("Sign-in failed"),
        "sign_out": N_("Signed out"),
    },
    "operator": {
        "eq": N_("equals"),
        "ne": N_("does not equal"),
        "lt": N_("is less than"),
        "le": N_("is at most"),
        "gt": N_("is greater than"),
        "ge": N_("is at least"),
        "in": N_("is one of"),
        "not_in": N_("is none of"),
        "contains": N_("contains"),
        "starts_with": N_("starts with"),
        "ends_with": N_("ends with"),
        "is_empty": N_("is empty"),
        "is_not_empty": N_("is not empty"),
        "between": N_("is between"),
        "in_last_days": N_("is within the last … days"),
        "before_days_ago": N_("is more than … days ago"),
    },
}

# Known error codes, in the user's language; others show the service's (English) message.
ERRORS: dict[str, str] = {
    "csrf": N_("The form's security token is missing or wrong. Reload the page and try again."),
    "wrong_credentials": N_("Wrong email or password."),
    "too_many_attempts": N_("Too many failed sign-ins. Wait a few minutes and try again."),
    "deactivated": N_("This account is deactivated. Ask an administrator to reactivate it."),
    "forbidden": N_("Your role does not allow this."),
    "consent_required": N_(
        "Select I agree under Data privacy and compliance: without consent the connection cannot be saved."
    ),
    "name_taken": N_("This name is already taken. Choose another one."),
    "email_taken": N_("A user with this email already exists."),
    "last_admin": N_("This is the last active administrator. Make another user an administrator first."),
    "run_active": N_("This export already has an active run. Wait for it or cancel it."),
    "no_connection": N_("This export has no connection. Attach one before running it."),
    "export_forbidden": N_(
        "You may view this export but not change or run it: its connection is for administrators."
    ),
    "unsupported_auth": N_("Constant Contact has no API keys: authenticate with OAuth."),
    "wrong_password": N_("The current password is wrong."),
    "not_found": N_("It does not exist (any more)."),
    "unauthenticated": N_("Sign in to see this page."),
    "oauth_denied": N_(
        "The platform did not authorize the connection. What you typed is kept: authenticate again when ready."
    ),
    "oauth_state_expired": N_("The authorization took longer than 10 minutes. Authenticate again."),
}


def audit_action(tr: Translator, action: str) -> str:
    """``connection.create`` → *Connection · Created*, in the page's language (unknown parts as they are)."""
    kind, _, verb = action.rpartition(".")
    labeler = Labeler(tr)
    kind = {"exports": "export", "schedule": "system_schedule", "auth": ""}.get(kind, kind)
    words = labeler("audit_verb", verb)
    return f"{labeler('object_type', kind)} · {words}" if kind else words


def audit_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """What an audit entry changed, field by field (unchanged fields left out), as plain text."""
    before, after = before or {}, after or {}
    return [
        (name, _plain(before.get(name)), _plain(after.get(name)))
        for name in dict.fromkeys([*before, *after])
        if before.get(name) != after.get(name)
    ]


def _plain(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(_plain(item) for item in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_plain(item)}" for key, item in value.items()) or "—"
    return str(value)


class Labeler:
    """``label("run_status", run.status)`` in a template: the value's name in the page's language."""

    def __init__(self, tr: Translator) -> None:
        self.tr = tr

    def __call__(self, kind: str, value: object) -> str:
        if value is None:
            return "—"
        key = str(getattr(value, "value", value))
        text = LABELS.get(kind, {}).get(key)
        return self.tr(text) if text else key

    def options(self, kind: str) -> list[tuple[str, str]]:
        """(value, label) pairs of one kind, in their defined order."""
        return [(key, self.tr(text)) for key, text in LABELS[kind].items()]
