"""Actions on an export: edit, duplicate, detach, attach, remove (history kept), list,
run and run all; and who may do them (contributors only on shared connections)."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from segmentsync.auth.models import AuditEntry
from segmentsync.db import transaction
from segmentsync.errors import ConfigError, Conflict, Forbidden, Invalid
from segmentsync.exports import service, views
from segmentsync.exports.models import Delivered, Export, Run, RunStatus, ScheduleMode, Trigger
from segmentsync.exports.schemas import ExportUpdate

from .world import Person, World


def export_of(world: World, export_id: int) -> Export:
    with world.runtime.sessions() as session:
        export = session.get(Export, export_id)
        assert export is not None
        return export


def rows(world: World, person: Person, **query: str) -> list[views.ExportRow]:
    user = person.load(world.runtime)
    with world.runtime.sessions() as session:
        found = list(session.scalars(views.export_query(actor=user, **query)))
        return views.export_rows(session, found, user)


def act(world: World, person: Person, work: str, export_id: int, **kwargs: object) -> object:
    """Run a session-level service function as ``person`` in one transaction."""
    user = person.load(world.runtime)  # before the transaction: SQLite has one writer
    with transaction(world.runtime.sessions) as session:
        export = service.get(session=session, export_id=export_id, actor=user)
        function = getattr(service, work)
        if work == "duplicate":
            kwargs["runtime"] = world.runtime
        return function(session=session, export=export, actor=user, **kwargs)


def test_edit_changes_only_the_fields_given_and_asks_the_platform_only_when_needed(world: World) -> None:
    saved = world.create(world.form(attributes=[{"column": "first_name", "target": "Name"}]))
    admin = world.admin.load(world.runtime)
    # The list disappears on the platform: edits that do not touch the list still save ...
    client = world.cm.credentials
    httpx.delete(
        f"{world.sandbox.campaign_monitor_api}/lists/{world.cm.list_id}.json",
        auth=(client["ApiKey"], "x"),
        timeout=10,
    ).raise_for_status()
    changes = ExportUpdate(schedule_mode=ScheduleMode.CRON, cron="30 5 * * *", resubscribe=True)
    service.update(runtime=world.runtime, export_id=saved.export_id, changes=changes, actor=admin)
    export = export_of(world, saved.export_id)
    assert (export.schedule_mode, export.cron, export.resubscribe) == (ScheduleMode.CRON, "30 5 * * *", True)
    assert export.attributes == [{"column": "first_name", "target": "Name"}]
    # ... and those that do are checked again.
    with pytest.raises(ConfigError) as caught:
        service.update(
            runtime=world.runtime, export_id=saved.export_id, changes=ExportUpdate(attributes=[]), actor=admin
        )
    assert caught.value.field == "list_id"
    service.update(
        runtime=world.runtime,
        export_id=saved.export_id,
        changes=ExportUpdate(list_id=world.cm.other_list_id, name="Renamed"),
        actor=admin,
    )
    export = export_of(world, saved.export_id)
    assert (export.name, export.list_id, export.list_name) == (
        "Renamed",
        world.cm.other_list_id,
        "CM Shared other list",
    )
    with world.runtime.sessions() as session:
        entries = list(session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "export.update")))
        assert [e.after["name"] for e in entries if e.after] == ["Newsletter PL", "Renamed"]
        assert entries[1].before is not None
        assert entries[1].before["list_id"] == world.cm.list_id


def test_an_edit_may_clear_the_cron_and_cannot_take_a_taken_name(world: World) -> None:
    world.create(world.form(name="Other"))
    saved = world.create(world.form(schedule_mode="cron", cron="0 6 * * *"))
    admin = world.admin.load(world.runtime)
    service.update(
        runtime=world.runtime,
        export_id=saved.export_id,
        changes=ExportUpdate(schedule_mode=ScheduleMode.OFF, cron=None),
        actor=admin,
    )
    assert export_of(world, saved.export_id).cron is None
    with pytest.raises(Conflict, match="already exists"):
        service.update(
            runtime=world.runtime, export_id=saved.export_id, changes=ExportUpdate(name="Other"), actor=admin
        )


def test_duplicate_copies_the_settings_under_a_free_name_and_runs_nothing(world: World) -> None:
    saved = world.create(
        world.form(segment_ids=[world.segments["PL"], world.segments["FI"]], sync_mode="mirror")
    )
    first = act(world, world.admin, "duplicate", saved.export_id)
    second = act(world, world.admin, "duplicate", saved.export_id)
    named = act(world, world.admin, "duplicate", saved.export_id, name="My copy")
    assert isinstance(first, service.Saved)
    assert isinstance(second, service.Saved)
    assert isinstance(named, service.Saved)
    copy = export_of(world, first.export_id)
    assert copy.name == "Copy of Newsletter PL"
    assert export_of(world, second.export_id).name == "Copy of Newsletter PL (2)"
    assert export_of(world, named.export_id).name == "My copy"
    assert (copy.list_id, copy.list_name, copy.sync_mode.value) == (
        world.cm.list_id,
        "CM Shared list",
        "mirror",
    )
    with world.runtime.sessions() as session:
        assert service.segment_ids(session, copy.id) == sorted([world.segments["PL"], world.segments["FI"]])
        assert session.scalar(sa.select(sa.func.count()).select_from(Run)) == 0


def test_detach_keeps_the_export_inactive_until_a_connection_of_its_platform_is_attached(
    world: World,
) -> None:
    saved = world.create(world.form())
    act(world, world.contributor, "detach", saved.export_id)
    (row,) = rows(world, world.admin)
    assert (row.connection, row.connection_used, row.status, row.type.value) == (
        None, "No connection", "no_connection", "campaign_monitor",
    )  # fmt: skip
    with pytest.raises(Conflict, match="attach one"):
        act(world, world.admin, "run", saved.export_id)
    with pytest.raises(Conflict, match="no connection already"):
        act(world, world.admin, "detach", saved.export_id)
    admin, contributor = world.admin.load(world.runtime), world.contributor.load(world.runtime)
    with pytest.raises(Invalid, match="attach a Campaign Monitor connection"):
        service.attach(
            runtime=world.runtime,
            export_id=saved.export_id,
            connection_id=world.cc.connection_id,
            actor=admin,
        )
    with pytest.raises(Forbidden) as caught:
        service.attach(
            runtime=world.runtime, export_id=saved.export_id, connection_id=world.cm_private.connection_id,
            actor=contributor,
        )  # fmt: skip
    assert caught.value.field == "connection_id"
    service.attach(
        runtime=world.runtime,
        export_id=saved.export_id,
        connection_id=world.cm_private.connection_id,
        actor=admin,
    )
    assert export_of(world, saved.export_id).connection_id == world.cm_private.connection_id
    with world.runtime.sessions() as session:
        actions = list(
            session.scalars(sa.select(AuditEntry.action).where(AuditEntry.object_type == "export"))
        )
        assert actions == ["export.create", "export.detach", "export.attach"]


def test_attach_checks_the_list_on_the_new_connection(world: World) -> None:
    saved = world.create(world.form())
    act(world, world.admin, "detach", saved.export_id)
    other = world.sandbox.create_cm_client("Another client")
    from .world import _cm  # a connection to another client, which cannot see the list

    stranger = _cm(world.runtime, world.sandbox, world.admin, other, "CM Elsewhere", shared=True)
    with pytest.raises(ConfigError) as caught:
        service.attach(
            runtime=world.runtime, export_id=saved.export_id, connection_id=stranger.connection_id,
            actor=world.admin.load(world.runtime),
        )  # fmt: skip
    assert caught.value.field == "list_id"
    assert export_of(world, saved.export_id).connection_id is None


def test_remove_keeps_the_run_history_and_cancels_waiting_runs(world: World) -> None:
    saved = world.create(world.form())
    run = act(world, world.admin, "run", saved.export_id)
    assert isinstance(run, Run)
    act(world, world.contributor, "remove", saved.export_id)
    with world.runtime.sessions() as session:
        kept = session.get(Run, run.id)
        assert kept is not None
        assert (kept.export_id, kept.export_name, kept.status) == (None, "Newsletter PL", RunStatus.CANCELLED)
        assert session.get(Export, saved.export_id) is None


def test_remove_deletes_what_the_export_delivered_and_nothing_of_another(world: World) -> None:
    removed = world.create(world.form())
    other = world.create(world.form(name="Newsletter LV"))
    with world.runtime.sessions() as session, session.begin():  # no foreign key does it (migration 0003)
        for export_id in (removed.export_id, other.export_id):
            session.add_all(
                Delivered(export_id=export_id, email=f"p{i}@example.com", hash="h", profile_key=str(i))
                for i in range(3)
            )
    act(world, world.contributor, "remove", removed.export_id)
    with world.runtime.sessions() as session:
        left = session.execute(
            sa.select(Delivered.export_id, sa.func.count()).group_by(Delivered.export_id)
        ).all()
    assert [tuple(row) for row in left] == [(other.export_id, 3)]


def test_a_running_export_cannot_be_removed_or_detached(world: World) -> None:
    saved = world.create(world.form())
    run = act(world, world.admin, "run", saved.export_id)
    assert isinstance(run, Run)
    with transaction(world.runtime.sessions) as session:
        session.execute(sa.update(Run).where(Run.id == run.id).values(status=RunStatus.RUNNING))
    for work in ("remove", "detach"):
        with pytest.raises(Conflict, match="cancel"):
            act(world, world.admin, work, saved.export_id)


def test_permissions_follow_the_role_and_the_connection(world: World) -> None:
    shared = world.create(world.form(name="Shared"), world.contributor)
    private = world.create(world.form(name="Private", connection_id=world.cm_private.connection_id))
    with pytest.raises(Forbidden) as caught:
        world.create(world.form(name="Nope", connection_id=world.cm_private.connection_id), world.contributor)
    assert caught.value.field == "connection_id"
    with pytest.raises(Forbidden):
        world.create(world.form(name="Nope"), world.viewer)
    seen = {
        person.role.value: {r.name: r.permission for r in rows(world, person)}
        for person in (world.admin, world.contributor, world.viewer)
    }
    assert seen == {
        "admin": {"Private": "edit", "Shared": "edit"},
        "contributor": {"Private": "view", "Shared": "edit"},
        "viewer": {"Private": "view", "Shared": "view"},
    }
    for work in ("run", "detach", "duplicate", "remove"):
        with pytest.raises(Forbidden):
            act(world, world.contributor, work, private.export_id)
        with pytest.raises(Forbidden):
            act(world, world.viewer, work, shared.export_id)
    contributor = world.contributor.load(world.runtime)
    with pytest.raises(Forbidden):
        service.update(
            runtime=world.runtime,
            export_id=private.export_id,
            changes=ExportUpdate(resubscribe=True),
            actor=contributor,
        )
    run = act(world, world.contributor, "run", shared.export_id, dry_run=True)
    assert isinstance(run, Run)
    assert run.dry_run


def test_the_list_searches_and_sorts(world: World) -> None:
    world.create(world.form(name="b newsletter"))
    world.create(world.form(name="A newsletter", connection_id=world.cm_private.connection_id))
    world.create(world.cc_form(name="c contacts"))
    assert [r.name for r in rows(world, world.admin)] == ["A newsletter", "b newsletter", "c contacts"]
    assert [r.name for r in rows(world, world.admin, sort="-name")] == [
        "c contacts",
        "b newsletter",
        "A newsletter",
    ]
    assert [r.name for r in rows(world, world.admin, search="cm admins")] == [
        "A newsletter"
    ]  # the connection
    assert [r.name for r in rows(world, world.admin, search="CC LIST")] == ["c contacts"]  # the list name
    assert [r.type.value for r in rows(world, world.admin, sort="type")][-1] == "constant_contact"
    row = rows(world, world.admin, search="b news")[0]
    assert (row.connection, row.schedule, row.status, row.last_run) == (
        "CM Shared",
        "With system refresh",
        "never_run",
        None,
    )
    with pytest.raises(Invalid, match="cannot sort"):
        rows(world, world.admin, sort="secret")


def test_the_list_shows_each_exports_newest_run(world: World) -> None:
    """Runs of several exports interleaved (and a run of a removed export): each row shows its own
    export's newest run, and an export never run shows none."""
    ids = [world.create(world.form(name=f"e{n}")).export_id for n in range(3)]
    with transaction(world.runtime.sessions) as session:
        for export_id in [ids[0], ids[1], ids[0], None, ids[1], ids[1], ids[0]]:
            session.add(
                Run(
                    export_id=export_id, export_name="x", trigger=Trigger.SCHEDULE, status=RunStatus.SUCCEEDED
                )
            )
    with world.runtime.readers() as session:
        newest = dict(
            session.execute(sa.select(Run.export_id, sa.func.max(Run.id)).group_by(Run.export_id)).all()
        )
    shown = {r.id: r.last_run.id if r.last_run else None for r in rows(world, world.admin)}
    assert shown == {ids[0]: newest[ids[0]], ids[1]: newest[ids[1]], ids[2]: None}


def test_a_page_of_exports_reads_their_runs_in_three_statements_however_many(world: World) -> None:
    """The rows read only the columns a run's summary shows (not a run's 40): whatever the row
    shows of a run must have been read with it, or each row would read its run again."""
    ids = [world.create(world.form(name=f"e{n}")).export_id for n in range(4)]
    with transaction(world.runtime.sessions) as session:
        for export_id in ids:
            for status in (RunStatus.FAILED, RunStatus.QUEUED):  # a last run, and an active one
                session.add(
                    Run(
                        export_id=export_id,
                        export_name="x",
                        trigger=Trigger.SCHEDULE,
                        status=status,
                        error="e",
                    )
                )
    user = world.admin.load(world.runtime)
    with world.runtime.sessions() as session:
        found = list(session.scalars(views.export_query(actor=user)))
        statements: list[str] = []

        def note(connection: object, cursor: object, statement: str, *rest: object) -> None:
            statements.append(statement)

        engine = session.get_bind()
        sa.event.listen(engine, "before_cursor_execute", note)
        try:
            shown = views.export_rows(session, found, user)
        finally:
            sa.event.remove(engine, "before_cursor_execute", note)
    assert [(r.status, r.last_run.status if r.last_run else None) for r in shown] == [
        ("queued", RunStatus.QUEUED)
    ] * 4
    assert len(statements) == 3, statements  # connections, newest runs, active runs


def test_run_all_queues_every_export_with_an_active_schedule(world: World) -> None:
    system = world.create(world.form(name="System"))
    cron = world.create(world.form(name="Cron", schedule_mode="cron", cron="0 6 * * *"))
    world.create(world.form(name="Off", schedule_mode="off"))
    detached = world.create(world.form(name="Detached"))
    act(world, world.admin, "detach", detached.export_id)
    busy = world.create(world.form(name="Busy"))
    act(world, world.admin, "run", busy.export_id)
    private = world.create(world.form(name="Private", connection_id=world.cm_private.connection_id))
    contributor = world.contributor.load(world.runtime)
    with transaction(world.runtime.sessions) as session:
        queued, skipped = service.run_all(session=session, actor=contributor)
        assert sorted(r.export_id for r in queued) == sorted([system.export_id, cron.export_id])
        reasons = {item["name"]: item["reason"] for item in skipped}
    assert set(reasons) == {"Busy", "Private"}
    assert "already has an active run" in reasons["Busy"]
    assert "administrators" in reasons["Private"]
    admin = world.admin.load(world.runtime)
    with transaction(world.runtime.sessions) as session:
        queued, _ = service.run_all(session=session, actor=admin)
        assert [r.export_id for r in queued] == [private.export_id]  # the others are queued already
