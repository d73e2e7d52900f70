"""The configuration as it is in the store, in the file's shape (``config export``, and the
"before" of a plan).

Objects are sorted by name and every field is written, defaults included, in a fixed order: two
exports of the same configuration are the same text, so a diff between two files is a change.
Connections are written without secrets: each secret is an ``${ENVIRONMENT_VARIABLE}`` reference
named after the connection (``CM Shared`` → ``${CM_SHARED_API_KEY}``).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.auth.models import User
from segmentsync.auth.policy import Action, check
from segmentsync.config.document import SECRET_FIELDS, VERSION
from segmentsync.connections.models import Connection
from segmentsync.exports.models import Export, ExportSegment
from segmentsync.scheduling import schedule
from segmentsync.segments.models import Segment
from segmentsync.segments.rules import Group

SECRET_NAMES = SECRET_FIELDS


def variable_name(connection_name: str, secret: str) -> str:
    """``CM Shared`` + ``api_key`` → ``CM_SHARED_API_KEY``."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", connection_name).strip("_").upper() or "CONNECTION"
    if stem[0].isdigit():
        stem = "C_" + stem
    return f"{stem}_{secret.upper()}"


def reference(connection_name: str, secret: str) -> str:
    return "${" + variable_name(connection_name, secret) + "}"


def rules_of(raw: dict[str, Any]) -> dict[str, Any]:
    """A rule tree in its one normal form (defaults written out)."""
    return Group.model_validate(raw).model_dump(mode="json")


def segment_doc(segment: Segment) -> dict[str, Any]:
    """A segment in the file's shape: name, description, kind, then the kind's own field."""
    kind = segment.kind or "rule"
    doc: dict[str, Any] = {"name": segment.name, "description": segment.description or "", "kind": kind}
    if kind == "sql":
        doc["sql"] = segment.sql
    elif kind == "dbt":
        doc["dbt_model"] = segment.dbt_model
    else:
        doc["rules"] = rules_of(segment.rules or {})
    return doc


def wanted_segment_doc(name: str, description: str, definition: dict[str, Any]) -> dict[str, Any]:
    """What a file's segment makes of the stored one (its rule in the one normal form)."""
    if definition["kind"] == "rule":
        definition = {**definition, "rules": rules_of(definition["rules"])}
    return {"name": name, "description": description, **definition}


def connection_doc(connection: Connection, export_user: str | None) -> dict[str, Any]:
    settings = connection.settings or {}
    stored = set(settings.get("secrets_stored") or ())
    auth: dict[str, Any]
    if settings.get("auth_method") == "api_key" or "api_key" in stored:
        auth = {
            "method": "api_key",
            "client_id": settings.get("client_id"),
            "api_key": reference(connection.name, "api_key"),
        }
    else:
        auth = {
            "method": "oauth_tokens",
            "access_token": reference(connection.name, "access_token"),
            "refresh_token": reference(connection.name, "refresh_token"),
            "client_id": settings.get("client_id"),
            "oauth_client_id": settings.get("oauth_client_id"),
        }
        if "oauth_client_secret" in stored:
            auth["oauth_client_secret"] = reference(connection.name, "oauth_client_secret")
    doc: dict[str, Any] = {
        "name": connection.name,
        "type": connection.type.value,
        "consent": True,
        "shared_with_contributors": connection.shared_with_contributors,
        "export_user": export_user,
        "auth": auth,
        "api_url": settings.get("api_url"),
        "oauth_url": settings.get("oauth_url"),
    }
    return doc


def export_doc(values: dict[str, Any], *, connection: str | None, segments: list[str]) -> dict[str, Any]:
    """An export's fields (as the service stores them) in the file's shape."""

    def plain(value: Any) -> Any:
        return getattr(value, "value", value)

    return {
        "name": values["name"],
        "connection": connection,
        "list_id": values["list_id"],
        "email_column": values["email_column"],
        "segments": sorted(segments, key=str.casefold),
        "attributes": [{"column": a["column"], "target": a["target"]} for a in values["attributes"]],
        "create_missing_fields": bool(values["create_missing_fields"]),
        "consent_to_track": values["consent_to_track"],
        "consent_column": values["consent_column"],
        "sync_mode": plain(values["sync_mode"]),
        "removal_mode": plain(values["removal_mode"]),
        "resubscribe": bool(values["resubscribe"]),
        "schedule": plain(values["schedule_mode"]),
        "cron": values["cron"],
        "timezone": values["timezone"],
    }


def schedule_doc(session: Session) -> dict[str, Any]:
    row = schedule.load(session)
    spec = schedule.spec_of(row)
    return {
        "enabled": spec.enabled,
        "frequency": spec.frequency,
        "weekdays": list(spec.weekdays),
        "times": [t.strftime("%H:%M") for t in spec.times],
        "timezone": spec.timezone,
    }


def _stored_export(export: Export) -> dict[str, Any]:
    return {
        "name": export.name,
        "list_id": export.list_id,
        "email_column": export.email_column,
        "attributes": [dict(item) for item in export.attributes],
        "create_missing_fields": export.create_missing_fields,
        "consent_to_track": export.consent_to_track,
        "consent_column": export.consent_column,
        "sync_mode": export.sync_mode,
        "removal_mode": export.removal_mode,
        "resubscribe": export.resubscribe,
        "schedule_mode": export.schedule_mode,
        "cron": export.cron,
        "timezone": export.timezone,
    }


def current(session: Session) -> dict[str, Any]:
    """The whole configuration in the store, in the file's shape."""
    users: dict[int, str] = {row.id: row.email for row in session.execute(sa.select(User.id, User.email))}
    segments = list(session.scalars(sa.select(Segment)))
    segment_names = {s.id: s.name for s in segments}
    connections = list(session.scalars(sa.select(Connection)))
    connection_names = {c.id: c.name for c in connections}
    members: dict[int, list[str]] = {}
    for export_id, segment_id in session.execute(
        sa.select(ExportSegment.export_id, ExportSegment.segment_id)
    ):
        members.setdefault(export_id, []).append(segment_names[segment_id])
    exports = list(session.scalars(sa.select(Export)))
    return {
        "version": VERSION,
        "schedule": schedule_doc(session),
        "segments": sorted((segment_doc(s) for s in segments), key=_by_name),
        "connections": sorted(
            (
                connection_doc(c, users.get(c.export_user_id) if c.export_user_id else None)
                for c in connections
            ),
            key=_by_name,
        ),
        "exports": sorted(
            (
                export_doc(
                    _stored_export(e),
                    connection=connection_names.get(e.connection_id) if e.connection_id else None,
                    segments=members.get(e.id, []),
                )
                for e in exports
            ),
            key=_by_name,
        ),
    }


def _by_name(item: dict[str, Any]) -> str:
    return str(item["name"]).casefold()


def export_config(session: Session, *, actor: User) -> dict[str, Any]:
    """``config export``: administrators only (the file names every connection and list)."""
    check(actor, Action.CONNECTIONS_MANAGE)
    return current(session)
