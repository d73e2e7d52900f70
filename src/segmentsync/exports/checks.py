"""The export form's checks: each field against the rules, the profile table and the platform.

``draft`` checks everything the metadata store and the profile table can tell (no platform
call); ``check_platform`` then asks the platform for the list (its name is stored) and the custom
fields of the mapping, and creates missing Campaign Monitor fields when the export asks for it.
Call ``check_platform`` outside any metadata-store transaction: a token refresh commits in its own.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.auth.models import Role, User
from segmentsync.connections import access, lists
from segmentsync.connections.models import Connection, ConnectionType
from segmentsync.connections.service import destination_for
from segmentsync.destinations.base import Destination, FieldInfo, FieldType
from segmentsync.errors import N_, ConfigError, Forbidden, Invalid, NotFound, Problems, SegmentSyncError
from segmentsync.exports.models import RemovalMode, ScheduleMode
from segmentsync.exports.schemas import AttributeMap, ExportCreate
from segmentsync.profiles.columns import ColumnType
from segmentsync.runtime import Runtime
from segmentsync.scheduling import schedule
from segmentsync.segments import extras, kinds
from segmentsync.segments.models import Segment

CM, CC = ConnectionType.CAMPAIGN_MONITOR, ConnectionType.CONSTANT_CONTACT
TITLES = {CM: "Campaign Monitor", CC: "Constant Contact"}
_CM_LIST = re.compile(r"^[0-9a-f]{32}$")
CC_NAME_FIELDS = {"first_name": "first_name", "last_name": "last_name"}
FIELD_TYPES = {
    ColumnType.INTEGER: FieldType.NUMBER,
    ColumnType.FLOAT: FieldType.NUMBER,
    ColumnType.DATE: FieldType.DATE,
    ColumnType.TIMESTAMP: FieldType.DATE,
}


@dataclass
class Draft:
    """A checked export form, ready to be saved (after ``check_platform`` when needed)."""

    values: dict[str, Any]  # Export column values
    segment_ids: list[int]
    connection: Connection
    needs_platform: bool = True
    column_types: dict[str, ColumnType] = field(default_factory=dict)  # of the attribute columns
    members: int | None = None
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- the list and its platform


def list_type(list_id: str) -> ConnectionType | None:
    """The platform a list ID belongs to, by its format (None: neither)."""
    cleaned = list_id.strip().lower()
    if _CM_LIST.match(cleaned):
        return CM
    try:
        uuid.UUID(cleaned)
    except ValueError:
        return None
    return CC if len(cleaned) == 36 else None


def check_list_id(list_id: str, type: ConnectionType) -> str:
    cleaned = list_id.strip().lower()
    if list_type(cleaned) is type:
        return cleaned if type is CM else str(uuid.UUID(cleaned))
    example = N_("32 hexadecimal characters") if type is CM else N_("a UUID such as 1c2d3e4f-…")
    raise Invalid(
        "%(list_id)s is not a %(platform)s list ID: it is %(example)s",
        params={"list_id": repr(list_id), "platform": TITLES[type], "example": example},
        code="bad_list_id",
        field="list_id",
    )


def usable_connection(session: Session, connection_id: int, actor: User) -> Connection:
    """A connection ``actor`` may export to: admins any, contributors the shared ones."""
    connection = session.get(Connection, connection_id)
    if connection is None:
        raise NotFound(
            "there is no connection with id %(connection_id)s",
            params={"connection_id": connection_id},
            field="connection_id",
        )
    if actor.role is not Role.ADMIN and not connection.shared_with_contributors:
        raise Forbidden(
            "the connection “%(connection_name)s” is for administrators; choose a connection shared with contributors",
            params={"connection_name": connection.name},
            code="connection_forbidden",
            field="connection_id",
        )
    return connection


# ---------------------------------------------------------------- the whole form


def draft(*, session: Session, runtime: Runtime, data: ExportCreate, actor: User) -> Draft:
    """Check the form against the rules, the store and the profile table (not the platform)."""
    problems = Problems()  # every problem of the form at once
    name = data.name.strip()
    if not name:
        problems.add(Invalid("give the export a name", field="name"))
    connection = problems.check(usable_connection, session, data.connection_id, actor)
    columns = runtime.profiles.columns()
    segment_columns = [item.column.strip() for item in data.attributes]
    segment_types = problems.check(
        extras.for_export_form, session, runtime.profiles, data.segment_ids, segment_columns
    )  # None: the mapping's segment columns are refused already (reported once, as what they are)
    mappable = columns | (segment_types or {})
    values: dict[str, Any] = {
        "name": name,
        "email_column": problems.check(_email_column, data.email_column, columns),
        "resubscribe": data.resubscribe,
        "sync_mode": data.sync_mode,
        **(problems.check(_schedule, data) or {}),
    }
    if connection is not None:  # the platform's own checks need to know which it is
        type = connection.type
        values.update(
            connection_id=connection.id,
            list_id=problems.check(check_list_id, data.list_id, type),
            attributes=None
            if segment_types is None
            else problems.check(_attributes, data.attributes, type, mappable),
            create_missing_fields=problems.check(_create_missing, data.create_missing_fields, type),
            removal_mode=problems.check(_removal_mode, data.removal_mode, type),
            **(problems.check(_consent, data, type, columns) or {}),
        )
    segment_ids = problems.check(_segments, session, data.segment_ids)
    problems.raise_any()
    assert connection is not None  # else a problem was raised
    assert segment_ids is not None
    result = Draft(values=values, segment_ids=segment_ids, connection=connection)
    result.column_types = {item["column"]: mappable[item["column"]] for item in values["attributes"]}
    count_members(session, runtime, result)
    return result


def _column(name: str, columns: dict[str, ColumnType], what: str, field: str) -> str:
    if name not in columns:
        shown = ", ".join(list(columns)[:30]) + (" …" if len(columns) > 30 else "")
        raise Invalid(
            "the %(what)s %(name)s is not a column of the profile table (its columns: %(shown)s)",
            params={"what": what, "name": repr(name), "shown": shown},
            code="unknown_column",
            field=field,
        )
    return name


def _email_column(name: str, columns: dict[str, ColumnType]) -> str:
    _column(name, columns, N_("email column"), "email_column")
    if columns[name] is not ColumnType.STRING:
        raise Invalid(
            "the email column %(name)s holds %(value)s values, not text",
            params={"name": repr(name), "value": columns[name].value},
            field="email_column",
        )
    return name


def _attributes(
    items: list[AttributeMap], type: ConnectionType, columns: dict[str, ColumnType]
) -> list[dict[str, str]]:
    """Several columns may feed one field (joined by spaces: first + last name → Name)."""
    mapped: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        column = _column(item.column.strip(), columns, N_("attribute column"), "attributes")
        target = _target(item.target.strip(), type)
        if (column, target.casefold()) in seen:
            raise Invalid(
                "the column %(column)s is mapped to %(target)s twice",
                params={"column": repr(column), "target": repr(target)},
                field="attributes",
            )
        seen.add((column, target.casefold()))
        mapped.append({"column": column, "target": target})
    return mapped


def _target(target: str, type: ConnectionType) -> str:
    if type is CM:
        if target.casefold() == "name":
            return "Name"
        bare = target[1:-1] if target.startswith("[") and target.endswith("]") else target
        if not bare.strip() or "[" in bare or "]" in bare:
            raise Invalid(
                "%(target)s is not a Campaign Monitor field name",
                params={"target": repr(target)},
                field="attributes",
            )
        return f"[{bare.strip()}]"
    if target.casefold() in CC_NAME_FIELDS:
        return CC_NAME_FIELDS[target.casefold()]
    if target.lower().startswith("cf:") and target[3:].strip():
        return "cf:" + target[3:].strip()
    raise Invalid(
        "%(target)s is not a Constant Contact field: use first_name, last_name or cf:<custom field name>",
        params={"target": repr(target)},
        field="attributes",
    )


def _create_missing(create: bool, type: ConnectionType) -> bool:
    if create and type is not CM:
        raise Invalid(
            "creating missing custom fields is a Campaign Monitor option; create Constant Contact "
            "custom fields in Constant Contact first",
            field="create_missing_fields",
        )
    return create


def _removal_mode(mode: RemovalMode, type: ConnectionType) -> RemovalMode:
    if type is CC and mode is RemovalMode.UNSUBSCRIBE:
        raise Invalid(
            "Constant Contact exports in mirror mode remove the list membership; unsubscribe is a "
            "Campaign Monitor option",
            field="removal_mode",
        )
    return mode


def _consent(data: ExportCreate, type: ConnectionType, columns: dict[str, ColumnType]) -> dict[str, Any]:
    if type is CC:
        if data.consent_to_track != "Unchanged" or data.consent_column:
            raise Invalid("consent to track is a Campaign Monitor setting", field="consent_to_track")
        return {"consent_to_track": "Unchanged", "consent_column": None}
    if data.consent_to_track == "column":
        if not data.consent_column:
            raise Invalid("choose the profile column that holds the consent to track", field="consent_column")
        column = _column(data.consent_column.strip(), columns, N_("consent column"), "consent_column")
        return {"consent_to_track": "column", "consent_column": column}
    return {"consent_to_track": data.consent_to_track, "consent_column": None}


def _schedule(data: ExportCreate) -> dict[str, Any]:
    timezone = schedule.zone(data.timezone).key
    cron = schedule.check_cron(data.cron) if data.cron and data.cron.strip() else None
    if data.schedule_mode is ScheduleMode.CRON and cron is None:
        raise Invalid("a custom schedule needs a cron recurrence, e.g. '0 6 * * *'", field="cron")
    return {"schedule_mode": data.schedule_mode, "cron": cron, "timezone": timezone}


def _segments(session: Session, segment_ids: list[int]) -> list[int]:
    wanted = list(dict.fromkeys(segment_ids))
    if not wanted:
        raise Invalid("choose at least one segment", field="segment_ids")
    found = set(session.scalars(sa.select(Segment.id).where(Segment.id.in_(wanted))))
    unknown = [sid for sid in wanted if sid not in found]
    if unknown:
        raise Invalid(
            "there is no segment with id %(names)s",
            params={"names": ", ".join(map(str, unknown))},
            field="segment_ids",
        )
    return wanted


def count_members(session: Session, runtime: Runtime, result: Draft) -> None:
    """Profiles in the selected segments, counted now, and a warning over the export limit."""
    source = runtime.profiles
    try:
        segments = list(session.scalars(sa.select(Segment).where(Segment.id.in_(result.segment_ids))))
        rules = kinds.selections(session, source, segments)
        result.members = source.count(source.members(rules, [source.key]))
    except SegmentSyncError as exc:
        result.warnings.append(
            N_("the segments' members could not be counted: %(problem)s") % {"problem": exc.message}
        )
        return
    limit = runtime.settings.export_limit
    if result.members > limit:
        result.warnings.append(
            N_(
                "the selected segments hold %(members)s profiles, over the limit of %(limit)s per "
                "export: runs will fail before sending anything until the segments are narrowed"
            )
            % {"members": format(result.members, ","), "limit": format(limit, ",")}
        )


# ---------------------------------------------------------------- the platform


def check_platform(*, runtime: Runtime, draft: Draft) -> None:
    """The list exists (its name is stored) and so do the mapped custom fields (or are created)."""
    connection = draft.connection
    destination = destination_for(runtime=runtime, connection=connection)
    list_id = draft.values["list_id"]
    try:
        info = destination.describe_list(list_id)
        draft.values["list_name"] = info.name
        custom = [a for a in draft.values["attributes"] if a["target"] not in ("Name", *CC_NAME_FIELDS)]
        if custom:
            known = destination.custom_fields(list_id)
            for item in custom:
                item["target"] = _field_key(destination, draft, known, item).key
    except ConfigError as exc:
        if access.is_auth_failure(exc):
            lists.note_auth_failure(runtime=runtime, connection_id=connection.id, message=exc.message)
            raise
        raise ConfigError(
            "the list %(list_id)s could not be used on “%(connection_name)s”: %(message)s",
            params={"list_id": list_id, "connection_name": connection.name, "message": exc.message},
            code=exc.code,
            field=exc.field or "list_id",
            details=exc.details,
        ) from exc
    finally:
        destination.close()


def _field_key(
    destination: Destination, draft: Draft, known: list[FieldInfo], item: dict[str, str]
) -> FieldInfo:
    target = item["target"]
    bare = target[1:-1] if target.startswith("[") else target[3:] if target.startswith("cf:") else target
    for info in known:
        spellings = {info.key.casefold(), info.key.strip("[]").casefold(), info.name.casefold()}
        if target.casefold() in spellings or bare.casefold() in spellings:
            return info
    type = draft.connection.type
    if type is CM and draft.values["create_missing_fields"]:
        kind = FIELD_TYPES.get(draft.column_types.get(item["column"], ColumnType.STRING), FieldType.TEXT)
        created = destination.create_custom_field(draft.values["list_id"], bare, kind)
        draft.warnings.append(N_("created the custom field %(field)s on the list") % {"field": created.key})
        known.append(created)
        return created
    hint = (
        N_("tick 'create missing fields' or create it") if type is CM else N_("create it in Constant Contact")
    )
    raise Invalid(
        "the list has no custom field %(bare)s: %(hint)s, or change the mapping",
        params={"bare": repr(bare), "hint": hint},
        code="unknown_field",
        field="attributes",
    )
