"""`segmentsync exports …`: create, list, show, edit, remove, duplicate, detach, attach, run, run-all.

Commands act as ``--as EMAIL`` (default: the first active admin) and go through the same
services and policy table as the API. Exports, connections and segments are named by name or id.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.table import Table
from sqlalchemy.orm import Session

from segmentsync.auth.models import User
from segmentsync.connections.models import Connection
from segmentsync.db import id_from_text, transaction
from segmentsync.errors import Invalid, NotFound
from segmentsync.exports import service, views
from segmentsync.exports.models import RemovalMode, ScheduleMode, SyncMode
from segmentsync.exports.schemas import AttributeMap, ExportCreate, ExportOut, ExportUpdate
from segmentsync.exports.terminal import (
    in_transaction,
    load_run,
    print_export,
    print_json,
    reading,
    runs_table,
    show_saved,
    wait_for_run,
)
from segmentsync.segments.models import Segment
from segmentsync.terminal import AsUser, Json, actor, err, open_runtime, out

app = typer.Typer(no_args_is_help=True, help="Exports: segments sent to one list of a connection.")

NameOrId = Annotated[str, typer.Argument(help="the export's name or id")]
ConnectionOpt = Annotated[str | None, typer.Option("--connection", "-c", help="connection name or id")]
ListOpt = Annotated[str | None, typer.Option("--list", help="CM list ID (32 hex) / CC list ID (UUID)")]
EmailOpt = Annotated[str | None, typer.Option("--email-column", help="the profile column with the email")]
AttributeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--attribute", "-a", help="COLUMN=FIELD, repeatable (CM: Name, [City]; CC: first_name, cf:x)"
    ),
]
SegmentOpt = Annotated[
    list[str] | None, typer.Option("--segment", "-s", help="segment name or id, repeatable")
]
ConsentOpt = Annotated[str | None, typer.Option("--consent", help="Yes, No, Unchanged or column:NAME (CM)")]
CreateFieldsOpt = Annotated[
    bool | None, typer.Option("--create-missing-fields/--no-create-missing-fields", help="CM: create fields")
]
SyncOpt = Annotated[SyncMode | None, typer.Option("--sync-mode", help="add_update (default) or mirror")]
RemovalOpt = Annotated[
    RemovalMode | None, typer.Option("--removal", help="mirror, CM: delete or unsubscribe")
]
ResubscribeOpt = Annotated[bool | None, typer.Option("--resubscribe/--no-resubscribe", help="off by default")]
ScheduleOpt = Annotated[ScheduleMode | None, typer.Option("--schedule", help="system (default), cron or off")]
CronOpt = Annotated[str | None, typer.Option("--cron", help="five-field cron, e.g. '0 6 * * 1-5'")]
TimezoneOpt = Annotated[
    str | None, typer.Option("--timezone", help="time zone of the cron, e.g. Europe/Warsaw")
]


# ---------------------------------------------------------------- lookups and form fields


def connection_id(session: Session, key: str) -> int:
    found = session.scalar(sa.select(Connection.id).where(Connection.name == key.strip()))
    if found is None and (number := id_from_text(key)) is not None:
        found = session.scalar(sa.select(Connection.id).where(Connection.id == number))
    if found is None:
        raise NotFound(f"there is no connection named {key!r}", field="connection")
    return found


def segment_ids(session: Session, keys: list[str]) -> list[int]:
    ids = []
    for key in keys:
        found = session.scalar(sa.select(Segment.id).where(Segment.name == key.strip()))
        if found is None and (number := id_from_text(key)) is not None:
            found = session.scalar(sa.select(Segment.id).where(Segment.id == number))
        if found is None:
            raise NotFound(f"there is no segment named {key!r}", field="segment")
        ids.append(found)
    return ids


def attributes(pairs: list[str]) -> list[AttributeMap]:
    mapped = []
    for pair in pairs:
        column, sep, target = pair.partition("=")
        if not sep or not column.strip() or not target.strip():
            raise Invalid(
                f"--attribute {pair!r}: write COLUMN=FIELD, e.g. first_name=Name", field="attribute"
            )
        mapped.append(AttributeMap(column=column.strip(), target=target.strip()))
    return mapped


def consent(value: str) -> dict[str, Any]:
    if value.lower().startswith("column:"):
        return {"consent_to_track": "column", "consent_column": value.split(":", 1)[1].strip()}
    choices = {"yes": "Yes", "no": "No", "unchanged": "Unchanged"}
    if value.lower() not in choices:
        raise Invalid(f"--consent {value!r}: use Yes, No, Unchanged or column:NAME", field="consent")
    return {"consent_to_track": choices[value.lower()], "consent_column": None}


def _form(session: Session, **given: Any) -> dict[str, Any]:
    """The form fields given on the command line (None: not given)."""
    fields: dict[str, Any] = {}
    if given["connection"] is not None:
        fields["connection_id"] = connection_id(session, given["connection"])
    if given["segments"]:
        fields["segment_ids"] = segment_ids(session, given["segments"])
    if given["attributes"] is not None:
        fields["attributes"] = attributes(given["attributes"])
    if given["consent"] is not None:
        fields.update(consent(given["consent"]))
    simple = ("name", "list_id", "email_column", "create_missing_fields", "sync_mode", "removal_mode")
    for key in (*simple, "resubscribe", "schedule_mode", "cron", "timezone"):
        if given[key] is not None:
            fields[key] = given[key]
    return fields


# ---------------------------------------------------------------- commands


@app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="a unique name")],
    connection: ConnectionOpt = None,
    list_id: ListOpt = None,
    email_column: EmailOpt = None,
    segment: SegmentOpt = None,
    attribute: AttributeOpt = None,
    create_missing_fields: CreateFieldsOpt = None,
    consent_to_track: ConsentOpt = None,
    sync_mode: SyncOpt = None,
    removal: RemovalOpt = None,
    resubscribe: ResubscribeOpt = None,
    schedule: ScheduleOpt = None,
    cron: CronOpt = None,
    timezone: TimezoneOpt = None,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Create an export (saving never runs it)."""
    with open_runtime() as runtime:
        with transaction(runtime.sessions) as session:
            user = actor(session, as_user)
            fields = _form(
                session, name=name, connection=connection, list_id=list_id, email_column=email_column,
                segments=segment, attributes=attribute, create_missing_fields=create_missing_fields,
                consent=consent_to_track, sync_mode=sync_mode, removal_mode=removal, resubscribe=resubscribe,
                schedule_mode=schedule, cron=cron, timezone=timezone,
            )  # fmt: skip
        saved = service.create(runtime=runtime, data=ExportCreate.model_validate(fields), actor=user)
        show_saved(runtime, saved, user, as_json)


@app.command()
def edit(
    export: NameOrId,
    name: Annotated[str | None, typer.Option("--name", help="a new name")] = None,
    connection: ConnectionOpt = None,
    list_id: ListOpt = None,
    email_column: EmailOpt = None,
    segment: SegmentOpt = None,
    attribute: AttributeOpt = None,
    no_attributes: Annotated[bool, typer.Option("--no-attributes", help="send the email only")] = False,
    create_missing_fields: CreateFieldsOpt = None,
    consent_to_track: ConsentOpt = None,
    sync_mode: SyncOpt = None,
    removal: RemovalOpt = None,
    resubscribe: ResubscribeOpt = None,
    schedule: ScheduleOpt = None,
    cron: CronOpt = None,
    timezone: TimezoneOpt = None,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Change an export: only the options given change (--attribute and --segment replace the lists)."""
    with open_runtime() as runtime:
        with transaction(runtime.sessions) as session:
            user = actor(session, as_user)
            export_id = service.find(session=session, key=export, actor=user).id
            fields = _form(
                session, name=name, connection=connection, list_id=list_id, email_column=email_column,
                segments=segment, attributes=[] if no_attributes else attribute,
                create_missing_fields=create_missing_fields, consent=consent_to_track, sync_mode=sync_mode,
                removal_mode=removal, resubscribe=resubscribe, schedule_mode=schedule, cron=cron, timezone=timezone,
            )  # fmt: skip
        changes = ExportUpdate.model_validate(fields)
        saved = service.update(runtime=runtime, export_id=export_id, changes=changes, actor=user)
        show_saved(runtime, saved, user, as_json)


@app.command("list")
def list_exports(
    search: Annotated[
        str | None, typer.Option("--search", "-q", help="part of a name, list or connection")
    ] = None,
    sort: Annotated[
        str, typer.Option("--sort", help="name, connection, type, schedule, last_run; -x: descending")
    ] = "name",
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Data > Exports: name, connection, type, status, your permission, schedule, last run."""
    with open_runtime() as runtime:

        def work(session: Session, user: User) -> list[Any]:
            found = list(session.scalars(views.export_query(actor=user, search=search, sort=sort)))
            return views.export_rows(session, found, user)

        rows = reading(runtime, as_user, work)
        if as_json:
            print_json([row.model_dump(mode="json") for row in rows])
            return
        table = Table("id", "name", "connection", "type", "status", "permission", "schedule", "last run")
        for row in rows:
            last = f"#{row.last_run.id} {row.last_run.created_at:%Y-%m-%d %H:%M}" if row.last_run else "—"
            table.add_row(
                str(row.id), row.name, row.connection_used, row.type.value, row.status, row.permission,
                row.schedule, last,
            )  # fmt: skip
        out.print(table)


@app.command()
def show(export: NameOrId, as_user: AsUser = None, as_json: Json = False) -> None:
    """One export, with your permission on it and its last runs."""
    with open_runtime() as runtime:

        def work(session: Session, user: User) -> tuple[ExportOut, list[Any]]:
            found = service.find(session=session, key=export, actor=user)
            recent = list(session.scalars(views.run_query(actor=user, export_id=found.id).limit(5)))
            return views.export_out(session, found, user, now=runtime.clock()), views.run_outs(
                session, recent, now=runtime.clock()
            )

        view, recent = reading(runtime, as_user, work)
        if as_json:
            print_json(view)
            return
        print_export(view)
        if recent:
            out.print(runs_table(recent))


@app.command()
def remove(
    export: NameOrId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Remove an export (its run history is kept)."""
    if not yes:
        typer.confirm(f"Remove the export {export!r}? Its run history is kept.", abort=True)
    with open_runtime() as runtime:

        def work(session: Session, user: User) -> str:
            found = service.find(session=session, key=export, actor=user)
            service.remove(session=session, export=found, actor=user)
            return found.name

        removed = in_transaction(runtime, as_user, work)
    if as_json:
        print_json({"removed": removed})
        return
    out.print(f"removed the export “{removed}”", highlight=False)


@app.command()
def duplicate(
    export: NameOrId,
    name: Annotated[str | None, typer.Option("--name", help="default: Copy of …")] = None,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Copy an export's settings into a new export (not run)."""
    with open_runtime() as runtime:

        def work(session: Session, user: User) -> tuple[service.Saved, User]:
            found = service.find(session=session, key=export, actor=user)
            return service.duplicate(
                session=session, runtime=runtime, export=found, actor=user, name=name
            ), user

        saved, user = in_transaction(runtime, as_user, work)
        show_saved(runtime, saved, user, as_json)


@app.command()
def detach(export: NameOrId, as_user: AsUser = None, as_json: Json = False) -> None:
    """Detach the export from its connection (kept, inactive, "No connection")."""
    with open_runtime() as runtime:

        def work(session: Session, user: User) -> str:
            found = service.find(session=session, key=export, actor=user)
            service.detach(session=session, export=found, actor=user)
            return found.name

        detached = in_transaction(runtime, as_user, work)
    if as_json:
        print_json({"detached": detached})
        return
    out.print(f"detached the export “{detached}”: No connection", highlight=False)


@app.command()
def attach(
    export: NameOrId,
    connection: Annotated[str, typer.Option("--connection", "-c", help="connection name or id")],
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Attach a connection of the export's platform (its list is checked there)."""
    with open_runtime() as runtime:
        with transaction(runtime.sessions) as session:
            user = actor(session, as_user)
            export_id = service.find(session=session, key=export, actor=user).id
            wanted = connection_id(session, connection)
        saved = service.attach(runtime=runtime, export_id=export_id, connection_id=wanted, actor=user)
        show_saved(runtime, saved, user, as_json)


@app.command()
def run(
    export: NameOrId,
    wait: Annotated[
        bool, typer.Option("--wait", help="run it here (unless a worker has it) with a progress bar")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="stop after the plan: what would happen")
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="full resync: send every member, changed or not")
    ] = False,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Run an export now (even with no active schedule).

    With --wait, the exit status says how the run ended: 0 succeeded, 3 succeeded with rejections,
    4 awaiting confirmation, 5 failed, 6 cancelled, 130 interrupted.
    """
    with open_runtime() as runtime:

        def work(session: Session, user: User) -> int:
            found = service.find(session=session, key=export, actor=user)
            return service.run(
                session=session, export=found, actor=user, dry_run=dry_run, full_resync=full
            ).id

        run_id = in_transaction(runtime, as_user, work)
        kind = "dry run" if dry_run else "run"
        if not wait and as_json:
            print_json(load_run(runtime, run_id))
            return
        if not wait:
            out.print(
                f"queued {kind} #{run_id}; a worker (`segmentsync serve` or `worker`) runs it",
                highlight=False,
            )
            return
        code = wait_for_run(runtime, run_id, as_json=as_json)
    raise typer.Exit(code)


@app.command("run-all")
def run_all(as_user: AsUser = None, as_json: Json = False) -> None:
    """Run all: queue every export with an active schedule now."""
    with open_runtime() as runtime:

        def work(session: Session, user: User) -> tuple[list[int], list[dict[str, Any]]]:
            queued, skipped = service.run_all(session=session, actor=user)
            return [r.id for r in queued], skipped

        queued, skipped = in_transaction(runtime, as_user, work)
        if as_json:
            print_json(
                {"queued": [load_run(runtime, i).model_dump(mode="json") for i in queued], "skipped": skipped}
            )
            return
        out.print(
            f"queued {len(queued)} run(s): {', '.join(f'#{i}' for i in queued) or '—'}", highlight=False
        )
        for item in skipped:
            err.print(f"not queued: “{item['name']}”: {item['reason']}", highlight=False)
