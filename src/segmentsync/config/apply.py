"""Plan and apply a configuration file: the same services and checks as the UI, in one transaction.

Objects are matched by name (a renamed object is one removed and one created). Applying goes in
four steps, because the platforms are asked in the middle and no metadata-store transaction may
stay open while a platform is called (a token refresh commits in its own; on SQLite that needs
the write lock):

1. the credentials of connections to create (or whose key changed) are verified (no transaction);
2. a **rehearsal**: every change is made through the services — segment rules checked against the
   profile table, the connection consent and export user, the export form's checks, names, the
   schedule, the audit entries — in a transaction that is rolled back; each problem is kept with
   the line of the object it concerns, and the rehearsal goes on with the next object;
3. the lists (and mapped custom fields) of the exports whose connection, list or fields change
   are checked on their platform (no transaction);
4. ``apply`` only: if nothing went wrong, the rehearsal is made again for real, with what the
   platforms said, and committed — all or nothing.

``plan`` stops after step 3 and answers the changes (per object, per field, before → after), or
the problems; nothing is written (a plan never creates a missing custom field).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy.orm import Session

from segmentsync.auth import audit
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action, check
from segmentsync.config import state
from segmentsync.config.document import (
    ConfigDocument,
    ConfigProblems,
    ConnectionSpec,
    ExportSpec,
    Path,
    Problem,
    Secrets,
    Source,
    load,
)
from segmentsync.connections import access
from segmentsync.connections import service as connections
from segmentsync.connections.models import Connection
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionDraft, ConnectionUpdate, TokenAuth
from segmentsync.db import same_name
from segmentsync.errors import ConfigError, Invalid, SegmentSyncError
from segmentsync.exports import checks
from segmentsync.exports import service as exports
from segmentsync.exports.models import Export
from segmentsync.exports.schemas import ExportCreate, ExportUpdate
from segmentsync.runtime import Runtime
from segmentsync.scheduling import schedule
from segmentsync.segments import service as segments
from segmentsync.segments.models import Segment
from segmentsync.segments.schemas import SegmentCreate, SegmentUpdate

log = logging.getLogger(__name__)

Kind = Literal["schedule", "segment", "connection", "export"]
KINDS: tuple[Kind, ...] = ("schedule", "segment", "connection", "export")


class Change(BaseModel):
    kind: Kind
    name: str
    action: Literal["create", "update", "remove"]
    fields: dict[str, list[Any]] = {}  # name → [before, after]


class Plan(BaseModel):
    changes: list[Change]


# ---------------------------------------------------------------- diffs


def _diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, list[Any]]:
    keys = [*(before or {}), *[k for k in (after or {}) if k not in (before or {})]]
    fields = {}
    for key in keys:
        old = (before or {}).get(key)
        new = (after or {}).get(key)
        if old != new:
            fields[key] = [old, new]
    return fields


def _change(
    kind: Kind, name: str, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> Change | None:
    if before is None and after is not None:
        return Change(kind=kind, name=name, action="create", fields=_diff(None, after))
    if after is None and before is not None:
        return Change(kind=kind, name=name, action="remove", fields=_diff(before, None))
    fields = _diff(before or {}, after or {})
    fields.pop("name", None)
    return Change(kind=kind, name=name, action="update", fields=fields) if fields else None


# ---------------------------------------------------------------- what the file asks for


@dataclass
class _Context:
    runtime: Runtime
    actor: User
    source: Source
    document: ConfigDocument
    secrets: Secrets
    prune: bool
    problems: list[Problem] = field(default_factory=list)
    verified: dict[str, access.Verified] = field(default_factory=dict)  # connection name → credentials
    platform: dict[str, checks.Draft] = field(default_factory=dict)  # export name → checked draft
    drafts: dict[str, checks.Draft] = field(default_factory=dict)  # export name → rehearsed draft
    after: dict[tuple[Kind, str], dict[str, Any] | None] = field(default_factory=dict)
    failed: set[tuple[Kind, str]] = field(default_factory=set)

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(self.source.problem(path, message))


def _index(ctx: _Context, kind: str, name: str) -> int:
    for index, item in enumerate(getattr(ctx.document, kind) or []):
        if item.name.casefold() == name.casefold():
            return index
    raise LookupError(name)


def _auth(ctx: _Context, index: int, spec: ConnectionSpec) -> ApiKeyAuth | TokenAuth:
    def secret(name: str) -> SecretStr | None:
        value = ctx.secrets.value(("connections", index, "auth", name))
        return SecretStr(value) if value is not None else None

    auth = spec.auth
    if auth.method == "api_key":
        key = secret("api_key")
        assert key is not None  # resolved, or the file was refused
        return ApiKeyAuth(api_key=key, client_id=auth.client_id)
    access_token, refresh_token = secret("access_token"), secret("refresh_token")
    assert access_token is not None
    assert refresh_token is not None
    return TokenAuth(
        access_token=access_token,
        refresh_token=refresh_token,
        client_id=auth.client_id,
        oauth_client_id=auth.oauth_client_id,
        oauth_client_secret=secret("oauth_client_secret"),
    )


def _connection_doc(spec: ConnectionSpec) -> dict[str, Any]:
    doc = spec.model_dump(mode="json")
    if spec.export_user is None:
        doc.pop("export_user")
    return doc


def _needs_credentials(
    ctx: _Context, spec: ConnectionSpec, index: int, before: dict[str, Any] | None, stored: Connection | None
) -> bool:
    """A new connection, or one whose non-secret credentials, URLs or API key changed."""
    if before is None or stored is None:
        return True
    wanted = _connection_doc(spec)
    for key in ("api_url", "oauth_url"):
        if wanted.get(key) != before.get(key):
            return True
    old_auth, new_auth = before["auth"], wanted["auth"]
    if old_auth["method"] != new_auth["method"]:
        return True
    plain = [k for k in new_auth if k not in state.SECRET_NAMES]
    if any(old_auth.get(k) != new_auth.get(k) for k in plain):
        return True
    given = ctx.secrets.value(("connections", index, "auth", "api_key"))
    if new_auth["method"] == "api_key" and given is not None:
        # An API key does not rotate: another one in the environment is a change.
        return bool(ctx.runtime.vault.decrypt(stored.secrets).get("api_key") != given)
    return False  # OAuth tokens rotate: those of the file only create the connection


# ---------------------------------------------------------------- the steps


def _verify_credentials(ctx: _Context, before: dict[str, Any]) -> None:
    """Step 1: the platform checks the credentials of new and re-keyed connections."""
    with ctx.runtime.readers() as session:
        stored = {c.name: c for c in session.scalars(sa.select(Connection))}
        for c in stored.values():
            session.expunge(c)
    old = {doc["name"]: doc for doc in before["connections"]}
    for index, spec in enumerate(ctx.document.connections or []):
        if not _needs_credentials(ctx, spec, index, old.get(spec.name), stored.get(spec.name)):
            continue
        missing = [
            (path, variable)
            for path, variable in ctx.secrets.missing.items()
            if path[:2] == ("connections", index)
        ]
        if missing:
            for path, variable in missing:
                ctx.problem(path, f"the environment variable {variable} is not set")
            ctx.failed.add(("connection", spec.name))
            continue
        if spec.name in stored and stored[spec.name].type.value != spec.type.value:
            ctx.problem(
                ("connections", index, "type"),
                f"a connection's type cannot change (it is {stored[spec.name].type.value}); give the new one another name",
            )
            ctx.failed.add(("connection", spec.name))
            continue
        try:
            ctx.verified[spec.name] = access.authenticate(
                runtime=ctx.runtime, type=spec.type, auth=_auth(ctx, index, spec),
                api_url=spec.api_url, oauth_url=spec.oauth_url,
            )  # fmt: skip
        except SegmentSyncError as exc:
            ctx.problem(("connections", index, "auth"), exc.message)
            ctx.failed.add(("connection", spec.name))


@contextmanager
def _object(ctx: _Context, session: Session, kind: Kind, name: str, path: Path) -> Iterator[None]:
    """One object's changes in a savepoint: a problem is kept (with its line), the rest goes on."""
    try:
        with session.begin_nested():
            yield
    except (SegmentSyncError, ValidationError) as exc:
        message = exc.message if isinstance(exc, SegmentSyncError) else _validation_text(exc)
        where = path
        field_name = exc.field if isinstance(exc, SegmentSyncError) else None
        if field_name:
            key = _FIELD_KEYS.get(field_name, field_name)
            if ctx.source.lines.get((*path, key)):
                where = (*path, key)
        ctx.problem(where, message)
        ctx.failed.add((kind, name))


_FIELD_KEYS = {
    "segment_ids": "segments",
    "connection_id": "connection",
    "schedule_mode": "schedule",
}


def _validation_text(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _rehearse(ctx: _Context, session: Session, *, final: bool) -> None:
    """Make every change the file asks for through the services (step 2, and step 4 when final)."""
    actor = session.get(User, ctx.actor.id)
    assert actor is not None
    doc = ctx.document
    if doc.schedule is not None:
        with _object(ctx, session, "schedule", "system", ("schedule",)):
            wanted = doc.schedule.model_dump(mode="json")
            if wanted != state.schedule_doc(session):
                schedule.update(
                    session=session, data=schedule.ScheduleIn.model_validate(wanted), actor=actor,
                    now=ctx.runtime.clock(),
                )  # fmt: skip
            ctx.after[("schedule", "system")] = state.schedule_doc(session)
    for index, spec in enumerate(doc.segments or []):
        with _object(ctx, session, "segment", spec.name, ("segments", index)):
            _segment(ctx, session, actor, spec.name, spec.description, spec.definition())
    for index, connection in enumerate(doc.connections or []):
        if ("connection", connection.name) in ctx.failed and not final:
            continue
        with _object(ctx, session, "connection", connection.name, ("connections", index)):
            _connection(ctx, session, actor, index, connection)
    for index, export in enumerate(doc.exports or []):
        blocked = [("connection", export.connection)] + [("segment", s) for s in export.segments]
        if any(item in ctx.failed for item in blocked):
            continue  # its connection or a segment has a problem of its own already
        with _object(ctx, session, "export", export.name, ("exports", index)):
            _export(ctx, session, actor, index, export, final=final)
    if ctx.prune:
        _prune(ctx, session, actor)


def _segment(
    ctx: _Context, session: Session, actor: User, name: str, description: str, definition: dict[str, Any]
) -> None:
    """Create or change a segment of any kind through the segment service: a rule is checked
    against the profile table, a query (SQL, or a dbt model's relation) as the API checks it, and
    writing SQL takes the policy ``segments.sql`` (and an admin's restriction to admins)."""
    found = session.scalar(sa.select(Segment).where(same_name(Segment.name, name)))
    source = ctx.runtime.profiles
    if found is None:
        found = segments.create(
            session=session, source=source, actor=actor,
            segment_in=SegmentCreate.model_validate({"name": name, "description": description, **definition}),
        )  # fmt: skip
    elif state.segment_doc(found) != state.wanted_segment_doc(found.name, description, definition):
        what = {k: v for k, v in definition.items() if k != "kind"}
        segments.update(
            session=session, source=source, segment_id=found.id, actor=actor,
            segment_in=SegmentUpdate.model_validate({"description": description, **what}),
        )  # fmt: skip
    ctx.after[("segment", found.name)] = state.segment_doc(found)


def _connection(ctx: _Context, session: Session, actor: User, index: int, spec: ConnectionSpec) -> None:
    found = session.scalar(sa.select(Connection).where(Connection.name == spec.name))
    existed = found is not None
    verified = ctx.verified.get(spec.name)
    if spec.export_user is not None and spec.export_user.casefold() != actor.email.casefold():
        current = session.get(User, found.export_user_id) if found and found.export_user_id else None
        if current is None or current.email.casefold() != spec.export_user.casefold():
            raise Invalid(
                f"only the admin who applies the file can become the export user ({spec.export_user}); "
                f"apply it as that admin (--as {spec.export_user}) or leave export_user out",
                field="export_user",
            )
    if found is None:
        assert verified is not None  # verified in step 1, or a problem kept there
        draft = ConnectionDraft(
            type=spec.type, name=spec.name, shared_with_contributors=spec.shared_with_contributors,
            consent=spec.consent, add_me_as_export_user=spec.export_user is not None,
        )  # fmt: skip
        found = connections.save_new(
            session=session, runtime=ctx.runtime, draft=draft, verified=verified, actor=actor
        )
    else:
        if found.shared_with_contributors != spec.shared_with_contributors:
            connections.update(
                session=session, runtime=ctx.runtime, connection=found, actor=actor,
                data=ConnectionUpdate(shared_with_contributors=spec.shared_with_contributors),
            )  # fmt: skip
        if verified is not None:
            before = connections.snapshot(found)
            connections.reauthenticated(
                session=session, runtime=ctx.runtime, connection=found, verified=verified
            )
            session.flush()
            audit.record(
                session, actor=actor, action="connection.reauthenticate", object_type="connection",
                object_id=found.id, object_label=found.name, before=before, after=connections.snapshot(found),
            )  # fmt: skip
        wanted_user = spec.export_user
        if (
            wanted_user is not None
            and found.export_user_id != actor.id
            and wanted_user.casefold() == actor.email.casefold()
        ):
            connections.add_export_user(session=session, connection=found, actor=actor)
    users = {actor.id: actor.email}
    export_user = users.get(found.export_user_id) if found.export_user_id else None
    if found.export_user_id and export_user is None:
        export_user = session.scalar(sa.select(User.email).where(User.id == found.export_user_id))
    doc = state.connection_doc(found, export_user)
    # The file names the variables; the store cannot say which, so the file's names are shown.
    doc["auth"] = {
        **doc["auth"],
        **{k: v for k, v in _connection_doc(spec)["auth"].items() if k in state.SECRET_NAMES},
    }
    if verified is not None and existed:
        doc["credentials"] = "replaced (verified with the platform)"
    ctx.after[("connection", found.name)] = doc


def _export(
    ctx: _Context, session: Session, actor: User, index: int, spec: ExportSpec, *, final: bool
) -> None:
    found = session.scalar(sa.select(Export).where(Export.name == spec.name))
    if spec.connection is None:
        if found is None:
            raise Invalid("a new export needs a connection", field="connection_id")
        if found.connection_id is not None:
            exports.detach(session=session, export=found, actor=actor)
        ctx.after[("export", spec.name)] = _export_after(session, found)
        return
    connection = session.scalar(sa.select(Connection).where(Connection.name == spec.connection))
    if connection is None:
        raise Invalid(
            f"there is no connection named {spec.connection!r} (in the file or the store)",
            field="connection_id",
        )
    segment_ids = []
    for name in spec.segments:
        segment = session.scalar(sa.select(Segment).where(same_name(Segment.name, name)))
        if segment is None:
            raise Invalid(
                f"there is no segment named {name!r} (in the file or the store)", field="segment_ids"
            )
        segment_ids.append(segment.id)
    form = {
        "name": spec.name, "connection_id": connection.id, "list_id": spec.list_id, "email_column": spec.email_column,
        "attributes": [a.model_dump() for a in spec.attributes], "create_missing_fields": spec.create_missing_fields,
        "consent_to_track": spec.consent_to_track, "consent_column": spec.consent_column,
        "segment_ids": segment_ids, "sync_mode": spec.sync_mode, "removal_mode": spec.removal_mode,
        "resubscribe": spec.resubscribe, "schedule_mode": spec.schedule, "cron": spec.cron, "timezone": spec.timezone,
    }  # fmt: skip
    runtime = ctx.runtime
    if found is None:
        draft = exports.draft_create(
            session=session, runtime=runtime, data=ExportCreate.model_validate(form), actor=actor
        )
    else:
        draft = exports.draft_update(
            session=session,
            runtime=runtime,
            export=found,
            changes=ExportUpdate.model_validate(form),
            actor=actor,
        )
    if draft.needs_platform:
        checked = ctx.platform.get(spec.name)
        if checked is not None:  # what the platform said (the list's name, the fields' keys)
            draft.values["list_name"] = checked.values.get("list_name")
            draft.values["attributes"] = copy.deepcopy(checked.values["attributes"])
            draft.warnings.extend(checked.warnings)
        elif final:
            raise Invalid("the list was not checked on the platform", field="list_id")
        _keep_for_platform(ctx, session, spec.name, draft)
    after = state.export_doc(draft.values, connection=connection.name, segments=list(spec.segments))
    before = (
        state.export_doc(
            exports.audited(session, found),
            connection=_name(session, found.connection_id),
            segments=_segment_names(session, found.id),
        )
        if found
        else None
    )
    if final and (found is None or before != after):
        if found is None:
            exports.save_new(session=session, draft=draft, actor=actor)
        else:
            exports.save_changes(session=session, export=found, draft=draft, actor=actor)
    ctx.after[("export", spec.name)] = after


def _keep_for_platform(ctx: _Context, session: Session, name: str, draft: checks.Draft) -> None:
    """The draft, with its connection loaded and detached, for the platform check of step 3."""
    connection = draft.connection
    for attribute in ("id", "name", "type", "settings", "secrets", "secrets_version", "token_expires_at"):
        getattr(connection, attribute)
    kept = copy.copy(draft)
    kept.values = copy.deepcopy(draft.values)
    ctx.drafts[name] = kept


def _name(session: Session, connection_id: int | None) -> str | None:
    return (
        session.scalar(sa.select(Connection.name).where(Connection.id == connection_id))
        if connection_id
        else None
    )


def _segment_names(session: Session, export_id: int) -> list[str]:
    return list(
        session.scalars(
            sa.select(Segment.name).where(Segment.id.in_(exports.segment_ids(session, export_id)))
        )
    )


def _export_after(session: Session, export: Export) -> dict[str, Any]:
    return state.export_doc(
        exports.audited(session, export), connection=_name(session, export.connection_id),
        segments=_segment_names(session, export.id),
    )  # fmt: skip


def _prune(ctx: _Context, session: Session, actor: User) -> None:
    """Remove what the file's sections leave out: exports, then connections, then segments."""
    doc = ctx.document

    def remove_export(found: Any) -> None:
        exports.remove(session=session, export=found, actor=actor)

    def remove_connection(found: Any) -> None:
        connections.remove(session=session, connection=found, actor=actor)

    def remove_segment(found: Any) -> None:
        segments.delete(session=session, segment_id=found.id, actor=actor)

    sections: tuple[tuple[Kind, str, list[Any] | None, Any, Callable[[Any], None]], ...] = (
        ("export", "exports", doc.exports, Export, remove_export),
        ("connection", "connections", doc.connections, Connection, remove_connection),
        ("segment", "segments", doc.segments, Segment, remove_segment),
    )
    for kind, section, wanted, model, remove in sections:
        if wanted is None:
            continue
        # Segment names are compared without regard to case (as the segment service does).
        key: Callable[[str], str] = str.casefold if kind == "segment" else str
        keep = {key(item.name) for item in wanted}
        for found in session.scalars(sa.select(model).order_by(model.name)).all():
            if key(found.name) in keep:
                continue
            with _object(ctx, session, kind, found.name, (section,)):
                remove(found)
                ctx.after[(kind, found.name)] = None


def _check_platforms(ctx: _Context, *, plan: bool) -> None:
    """Step 3: each export's list (and mapped fields) on its platform, outside any transaction."""
    for name, draft in ctx.drafts.items():
        index = _index(ctx, "exports", name)
        checked = copy.copy(draft)
        checked.values = copy.deepcopy(draft.values)
        checked.warnings = []
        if plan and checked.values["create_missing_fields"]:
            checked.values["create_missing_fields"] = False  # a plan never creates a field
        try:
            checks.check_platform(runtime=ctx.runtime, draft=checked)
        except Invalid as exc:
            if plan and exc.code == "unknown_field" and draft.values["create_missing_fields"]:
                checked.warnings.append("a custom field would be created on the list")
            else:
                ctx.problem(
                    ("exports", index, "attributes" if exc.field == "attributes" else "list_id"), exc.message
                )
                continue
        except (ConfigError, SegmentSyncError) as exc:
            field_name = "list_id" if (exc.field or "list_id") == "list_id" else "connection"
            ctx.problem(("exports", index, field_name), exc.message)
            continue
        ctx.platform[name] = checked


def _changes(before: dict[str, Any], ctx: _Context) -> list[Change]:
    old: dict[tuple[Kind, str], dict[str, Any]] = {("schedule", "system"): before["schedule"]}
    for kind, section in (("segment", "segments"), ("connection", "connections"), ("export", "exports")):
        for doc in before[section]:
            old[(kind, doc["name"])] = doc  # type: ignore[index]
    changes = []
    for kind in KINDS:
        keys = [k for k in ctx.after if k[0] == kind]
        for key in keys:
            previous = old.get(key)
            if previous is None:
                previous = next(
                    (doc for k, doc in old.items() if k[0] == kind and k[1].casefold() == key[1].casefold()),
                    None,
                )
            if kind == "connection" and previous is not None and ctx.after[key] is not None:
                previous = {
                    **previous,
                    "auth": {
                        **previous["auth"],
                        **{
                            k: v for k, v in (ctx.after[key] or {})["auth"].items() if k in state.SECRET_NAMES
                        },
                    },
                }
            change = _change(kind, key[1], previous, ctx.after[key])
            if change is not None:
                changes.append(change)
    return changes


def _rehearsal(ctx: _Context) -> None:
    session = ctx.runtime.sessions()
    try:
        session.begin()
        _rehearse(ctx, session, final=False)
        for draft in ctx.drafts.values():
            session.expunge(draft.connection)
    finally:
        session.rollback()
        session.close()


def _prepare(
    runtime: Runtime, actor: User, text: str, *, prune: bool, environ: dict[str, str] | None, plan: bool
) -> tuple[_Context, list[Change]]:
    """Steps 1-3: the context for step 4, and the changes; ConfigProblems if anything is wrong."""
    check(actor, Action.CONNECTIONS_MANAGE)
    source, document, secrets = load(text, environ)
    ctx = _Context(
        runtime=runtime, actor=actor, source=source, document=document, secrets=secrets, prune=prune
    )
    with runtime.readers() as session:
        before = state.current(session)
    _verify_credentials(ctx, before)
    _rehearsal(ctx)
    _check_platforms(ctx, plan=plan)
    if ctx.problems:
        raise ConfigProblems(ctx.problems)
    return ctx, _changes(before, ctx)


def plan(
    *, runtime: Runtime, actor: User, text: str, prune: bool = False, environ: dict[str, str] | None = None
) -> Plan:
    """What applying ``text`` would change; ConfigProblems (every problem, with its line) if it cannot."""
    _, changes = _prepare(runtime, actor, text, prune=prune, environ=environ, plan=True)
    return Plan(changes=changes)


def apply(
    *, runtime: Runtime, actor: User, text: str, prune: bool = False, environ: dict[str, str] | None = None
) -> Plan:
    """Make the store match ``text`` in one transaction (nothing changes if anything is wrong)."""
    ctx, changes = _prepare(runtime, actor, text, prune=prune, environ=environ, plan=False)
    if not changes:
        return Plan(changes=[])
    ctx.after.clear()
    with runtime.sessions() as session, session.begin():
        _rehearse(ctx, session, final=True)
        if ctx.problems:  # the store changed since the rehearsal: nothing is committed
            raise ConfigProblems(ctx.problems)
    log.info("configuration applied by %s: %d change(s)", actor.email, len(changes))
    return Plan(changes=changes)
