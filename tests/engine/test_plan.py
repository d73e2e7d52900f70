"""Plan: set operations against the delivered state, and the plan stored in both metadata stores."""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.destinations import campaign_monitor_rows as cm
from segmentsync.engine import bulk
from segmentsync.engine import plan as planner
from segmentsync.engine.rows import PlanRow
from segmentsync.engine.snapshot import Mapping, build
from segmentsync.engine.workspace import Workspace
from segmentsync.exports.models import Delivered, Export, Run, RunMember, Trigger
from segmentsync.runtime import Runtime

MAPPING = Mapping(key_column="id", email_column="email", attributes=[("name", "Name")], consent=None)


def template() -> cm.RowTemplate:
    """Campaign Monitor's rows for MAPPING (Name from the name column; no consent column)."""
    from segmentsync.destinations.templates import Value

    return cm.template([("Name", Value("v0", "text"))], {}, None)


@pytest.fixture
def ws() -> Iterator[Workspace]:
    with Workspace(Path(tempfile.gettempdir()) / "segmentsync-test-work") as workspace:
        yield workspace


def profiles(people: dict[str, str], invalid: tuple[str, ...] = ()) -> Iterator[pa.RecordBatch]:
    emails = [*people, *invalid]
    names = [*people.values(), *("x" for _ in invalid)]
    return iter(
        pa.table({"id": list(range(1, len(emails) + 1)), "email": emails, "name": names}).to_batches()
    )


def hashes(people: dict[str, str]) -> dict[str, str]:
    """What the export would have delivered for these people (email → hash)."""
    with Workspace(Path(tempfile.gettempdir()) / "segmentsync-test-work") as other:
        build(other, profiles(people), MAPPING)
        return dict(other.con.execute("SELECT email, hash FROM members").fetchall())


def delivered(ws: Workspace, people: dict[str, str]) -> Workspace:
    """The workspace, with what the export would have delivered to these people as ``delivered``."""
    found = hashes(people)
    state = pa.table(
        {"email": list(found), "hash": list(found.values()), "profile_key": [None] * len(found)},
        schema=pa.schema([("email", pa.string()), ("hash", pa.string()), ("profile_key", pa.string())]),
    )
    ws.con.register("state", state)
    ws.con.execute("CREATE TABLE delivered AS SELECT * FROM state")
    ws.con.unregister("state")
    return ws


def planned(ws: Workspace) -> list[tuple[int, str, str, str | None]]:
    return ws.con.execute("SELECT rowid + 1, email, action, outcome FROM planned ORDER BY rowid").fetchall()


def test_new_changed_unchanged_removed_and_the_rows_to_send_come_first(ws: Workspace) -> None:
    before = {"same@x.com": "Ann", "changed@x.com": "Bo", "gone@x.com": "Cy"}
    build(
        ws,
        profiles({"same@x.com": "Ann", "changed@x.com": "Bob", "new@x.com": "Di"}, invalid=("bad@",)),
        MAPPING,
    )
    plan = planner.plan(delivered(ws, before), full_resync=False, mirror=True, template=template)
    assert (plan.new, plan.update, plan.unchanged, plan.remove, plan.invalid) == (1, 1, 1, 1, 1)
    assert plan.delivered_before == 3
    assert planned(ws) == [
        (1, "changed@x.com", "update", None),
        (2, "new@x.com", "new", None),
        (3, "gone@x.com", "remove", None),
        (4, "same@x.com", "unchanged", "unchanged"),
        (5, "bad@", "invalid", "invalid"),
    ]
    assert plan.samples["remove"] == [{"email": "gone@x.com", "profile_key": None}]
    assert not plan.guard_trips()


def test_the_rows_to_send_are_in_email_order(ws: Workspace) -> None:
    """Each batch then touches a narrow range of the delivered state's e-mail key: its checkpoint
    writes a few pages of that index instead of a page per member."""
    emails = [f"{n * 7919 % 30_011:05d}@x.com" for n in range(30_000)]  # a shuffled order, no repeats
    build(ws, profiles(dict.fromkeys(emails, "Ann")), MAPPING)
    changed = dict.fromkeys(emails[::3], "Bo")  # every third one was delivered with another name
    planner.plan(delivered(ws, changed), full_resync=False, mirror=False, template=template)
    to_send = [email for _, email, action, _ in planned(ws) if action in ("new", "update")]
    assert len(to_send) == len(emails)
    assert to_send == sorted(emails)


def test_only_rows_to_send_keep_their_payload(ws: Workspace) -> None:
    build(ws, profiles({"same@x.com": "Ann", "new@x.com": "Di"}), MAPPING)
    planner.plan(delivered(ws, {"same@x.com": "Ann"}), full_resync=False, mirror=False, template=template)
    stored = dict(ws.con.execute("SELECT email, payload FROM planned").fetchall())
    assert orjson.loads(stored["new@x.com"]) == {
        "EmailAddress": "new@x.com",
        "ConsentToTrack": "Unchanged",
        "Name": "Di",
    }
    assert stored["same@x.com"] is None


def test_add_and_update_mode_never_removes(ws: Workspace) -> None:
    build(ws, profiles({"a@x.com": "A"}), MAPPING)
    plan = planner.plan(
        delivered(ws, {"gone@x.com": "G"}), full_resync=False, mirror=False, template=template
    )
    assert (plan.new, plan.remove) == (1, 0)


def test_full_resync_sends_unchanged_members_again(ws: Workspace) -> None:
    build(ws, profiles({"a@x.com": "A", "b@x.com": "B"}), MAPPING)
    plan = planner.plan(delivered(ws, {"a@x.com": "A"}), full_resync=True, mirror=False, template=template)
    assert (plan.new, plan.update, plan.unchanged) == (1, 1, 0)


def test_member_whose_email_became_invalid_is_removed_in_mirror_mode(ws: Workspace) -> None:
    build(ws, profiles({"b@x.com": "B", "c@x.com": "C"}, invalid=("a@x",)), MAPPING)
    plan = planner.plan(
        delivered(ws, {"a@x.com": "A", "b@x.com": "B", "c@x.com": "C"}),
        full_resync=False,
        mirror=True,
        template=template,
    )
    assert plan.remove == 1


@pytest.mark.parametrize(("kept", "removed", "trips"), [(4, 6, True), (5, 5, False), (0, 10, True)])
def test_mirror_guard_trips_above_half_of_the_delivered_members(
    ws: Workspace, kept: int, removed: int, trips: bool
) -> None:
    everyone = {f"m{i}@x.com": "N" for i in range(10)}
    build(ws, profiles(dict(list(everyone.items())[:kept])), MAPPING)
    plan = planner.plan(delivered(ws, everyone), full_resync=False, mirror=True, template=template)
    assert plan.remove == removed
    assert plan.guard_trips() is trips


def _export_and_run(session: Session) -> tuple[int, int]:
    export = Export(name="e", list_id="l" * 32, email_column="email")
    session.add(export)
    session.flush()
    run = Run(export_id=export.id, export_name="e", trigger=Trigger.ON_DEMAND)
    session.add(run)
    session.flush()
    return export.id, run.id


def test_the_plan_is_stored_and_the_delivered_state_read_back(runtime: Runtime, ws: Workspace) -> None:
    with runtime.sessions() as session, session.begin():
        export_id, run_id = _export_and_run(session)
        for email, digest in hashes({"same@x.com": "Ann"}).items():
            session.add(Delivered(export_id=export_id, email=email, hash=digest, profile_key="7"))
    with runtime.readers() as session:
        planner.load_delivered(ws, session, export_id)
    assert ws.con.execute("SELECT email, hash, profile_key FROM delivered").fetchall() == [
        ("same@x.com", hashes({"same@x.com": "Ann"})["same@x.com"], "7")
    ]
    assert not (ws.folder / "delivered.csv").exists()  # the file it came through is gone

    build(ws, profiles({"same@x.com": "Ann", "new@x.com": "Di"}), MAPPING)
    planner.plan(ws, full_resync=False, mirror=False, template=template)
    with runtime.sessions() as session, session.begin():
        for chunk in planner.planned_rows(ws, run_id):
            bulk.insert_members(session, chunk)
        bulk.analyze(session, 1)
    with runtime.readers() as session:
        rows = session.execute(
            sa.select(RunMember.seq, RunMember.email, RunMember.action, RunMember.outcome, RunMember.payload)
            .where(RunMember.run_id == run_id)
            .order_by(RunMember.seq)
        ).all()
    assert [
        (seq, email, action.value, outcome, payload) for seq, email, action, outcome, payload in rows
    ] == [
        (1, "new@x.com", "new", None, '{"EmailAddress":"new@x.com","ConsentToTrack":"Unchanged","Name":"Di"}')
    ]
    # the unchanged member is kept compactly beside them
    first_seq, count, data = planner.unchanged(ws) or (0, 0, b"")
    assert (first_seq, count, zlib.decompress(data).decode()) == (2, 1, "same@x.com\t1")


@pytest.mark.parametrize("chunk", [bulk.DELIVERED_CHUNK, 2])
def test_the_delivered_state_survives_any_key(
    runtime: Runtime, ws: Workspace, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys with quotes, commas, line breaks and no key at all come back as they were stored —
    also when SQLite hands the state over in several pieces (chunk 2: four pieces of text)."""
    monkeypatch.setattr(bulk, "DELIVERED_CHUNK", chunk)
    keys = ["plain", 'with "quotes"', "a,b", "two\nlines", None, "", "cr\r\nlf", "x"]
    with runtime.sessions() as session, session.begin():
        export = Export(name="e", list_id="l" * 32, email_column="email")
        session.add(export)
        session.flush()
        for index, key in enumerate(keys):
            session.add(
                Delivered(export_id=export.id, email=f"m{index}@x.com", hash=f"{index:016x}", profile_key=key)
            )
        export_id = export.id
    with runtime.readers() as session:
        planner.load_delivered(ws, session, export_id)
    assert ws.con.execute("SELECT email, hash, profile_key FROM delivered ORDER BY email").fetchall() == [
        (f"m{index}@x.com", f"{index:016x}", key) for index, key in enumerate(keys)
    ]


def test_nothing_to_send_asks_the_destination_nothing(ws: Workspace) -> None:
    def no_call() -> cm.RowTemplate:
        raise AssertionError("the destination was asked for its template with nothing to send")

    build(ws, profiles({"a@x.com": "A"}), MAPPING)
    plan = planner.plan(delivered(ws, {"a@x.com": "A"}), full_resync=False, mirror=False, template=no_call)
    assert (plan.unchanged, plan.to_send) == (1, 0)


def test_rows_the_platform_would_refuse_are_rejected_not_sent(ws: Workspace) -> None:
    from segmentsync.destinations import constant_contact_rows as cc

    long = "a@" + "b" * 40 + "." + "c" * 40 + ".com"  # valid, but over Constant Contact's 80 characters
    build(ws, profiles({"ok@x.com": "A", long: "B"}), MAPPING)
    plan = planner.plan(
        delivered(ws, {}), full_resync=False, mirror=False, template=lambda: cc.template([], {})
    )
    assert (plan.new, plan.refused) == (1, 1)
    rows = ws.con.execute(
        "SELECT email, action, outcome, code, message, payload FROM planned ORDER BY rowid"
    ).fetchall()
    assert rows[0][:4] == ("ok@x.com", "new", None, None)
    assert rows[1] == (long, "new", "rejected", "refused", "the address is longer than 80 characters", None)


def test_an_export_that_delivered_nothing_yet_has_an_empty_state(runtime: Runtime, ws: Workspace) -> None:
    with runtime.sessions() as session, session.begin():
        export = Export(name="e", list_id="l" * 32, email_column="email")
        session.add(export)
        session.flush()
        export_id = export.id
    with runtime.readers() as session:
        planner.load_delivered(ws, session, export_id)
    assert ws.count("SELECT count(*) FROM delivered") == 0
    build(ws, profiles({"a@x.com": "A"}), MAPPING)
    plan = planner.plan(ws, full_resync=False, mirror=True, template=template)
    assert (plan.new, plan.remove, plan.delivered_before) == (1, 0, 0)


def _members(run_id: int, first: int, count: int) -> list[PlanRow]:
    return [
        PlanRow(run_id, seq, f"p{seq}@x.com", str(seq), "h", "{}", "new", None, None, None)
        for seq in range(first, first + count)
    ]


def _analysed(session: Session) -> int:
    """How often run_members' statistics were taken (ANALYZE; the test server's autovacuum is off)."""
    return int(
        session.scalar(sa.text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'run_members'"))
    )


def test_run_members_are_analysed_again_only_when_their_statistics_are_stale(runtime: Runtime) -> None:
    """ANALYZE samples the whole table: 20 unchanged re-runs on a year-old store queued 3 s each
    behind it. A table filled from empty is analysed (the send phase's reads are planned on it);
    a run that stores less than PostgreSQL's own staleness rule (50 rows + 10 %) is not."""
    with runtime.sessions() as session, session.begin():
        _, run_id = _export_and_run(session)
        if session.connection().dialect.name != "postgresql":
            assert not bulk.analyze(session, 10_000)  # SQLite plans these reads without
            return
        bulk.insert_members(session, _members(run_id, 1, 2_000))
        before = _analysed(session)
        assert bulk.analyze(session, 2_000)  # a table never analysed since it was emptied
    with runtime.sessions() as session, session.begin():
        bulk.insert_members(session, _members(run_id, 2_001, 200))
        assert not bulk.analyze(session, 250)  # 250 <= 50 + 10 % of 2,000
        assert not bulk.analyze(session, 0)  # an unchanged re-run stores nothing
        bulk.insert_members(session, _members(run_id, 2_201, 51))
        assert bulk.analyze(session, 251)  # stale
    with runtime.sessions() as session, session.begin():
        assert _analysed(session) == before + 2
        assert not bulk.analyze(session, 0)
