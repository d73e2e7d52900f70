"""Paging a run's rows across every kind of row — sent, removed, refused, unchanged (kept
compactly), invalid — returns each row exactly once and in seq order: by cursor and by offset,
with and without filters, through the service and the API."""

from __future__ import annotations

import csv
import io
import itertools
import zlib
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from engine.test_run import change_profiles, make_export, run_export
from segmentsync.db import transaction
from segmentsync.exports import run_rows, runs
from segmentsync.exports.models import Run, RunMember, RunStatus, RunUnchanged, SyncMode

from .world import World

API = "/api/v1"
LONG = "a@" + "b" * 40 + "." + "c" * 40 + ".com"  # valid, over Constant Contact's 80 characters


@pytest.fixture
def every_kind(world: World) -> Run:
    """A Constant Contact mirror export of 40 members, then: 3 left (removed), 2 changed (sent),
    1 with an address the platform refuses (refused, and its old address removed), 1 without an
    address (invalid, and its old address removed), the rest unchanged."""
    world.sandbox.cc_faults(requests_per_second=None, instant_activities=True)
    export_id = make_export(
        world,
        "constant_contact",
        sync_mode=SyncMode.MIRROR,
        attributes=[{"column": "first_name", "target": "first_name"}],
    )
    run_export(world, export_id)
    change_profiles(world, "DELETE FROM profiles WHERE profile_id IN (1, 2, 3)")
    change_profiles(world, "UPDATE profiles SET first_name = 'Changed' WHERE profile_id IN (5, 30)")
    change_profiles(world, f"UPDATE profiles SET email = '{LONG}' WHERE profile_id = 7")
    change_profiles(world, "UPDATE profiles SET email = NULL WHERE profile_id = 12")
    run = run_export(world, export_id)
    assert run.status is RunStatus.SUCCEEDED_WITH_REJECTIONS
    assert (run.updated, run.removed, run.rejected, run.invalid, run.unchanged) == (2, 5, 1, 1, 33)
    return run


def _truth(world: World, run: Run) -> list[tuple[Any, ...]]:
    """Every row of the run the slow way: run_members plus the whole unchanged stream, sorted."""
    with world.runtime.readers() as session:
        rows = [
            (m.seq, m.email, m.profile_key, m.action.value, m.outcome.value if m.outcome else None)
            for m in session.query(RunMember).filter(RunMember.run_id == run.id)
        ]
        keep = run_rows.kept(session, run.id)
        assert keep is not None
        assert keep.count == 33
        for index, block in run_rows.blocks(keep, run_rows.fetcher(session, run.id)):
            for at, line in enumerate(block.split(b"\n")):
                email, _, key = line.decode().partition("\t")
                rows.append((keep.first_seq + index + at, email, key or None, "unchanged", "unchanged"))
    return sorted(rows)


def _key(row: run_rows.Row) -> tuple[Any, ...]:
    return (row.seq, row.email, row.profile_key, row.action.value, row.outcome.value if row.outcome else None)


FILTERS: list[tuple[str | None, str | None, Callable[[tuple[Any, ...]], bool]]] = [
    (None, None, lambda row: True),
    (None, "unchanged", lambda row: row[4] == "unchanged"),
    (None, "removed", lambda row: row[4] == "removed"),
    (None, "rejected", lambda row: row[4] == "rejected"),
    (None, "invalid", lambda row: row[4] == "invalid"),
    (None, "pending", lambda row: row[4] is None),
    ("PERSON1", None, lambda row: "person1" in row[1].lower()),
    ("0@", None, lambda row: "0@" in row[1].lower()),
    ("1", "unchanged", lambda row: "1" in row[1].lower() and row[4] == "unchanged"),
    ("example.com", "removed", lambda row: "example.com" in row[1] and row[4] == "removed"),
]


def test_every_row_once_in_order_by_cursor_and_by_offset(world: World, every_kind: Run) -> None:
    truth = _truth(world, every_kind)
    assert {row[4] for row in truth} == {"updated", "removed", "rejected", "unchanged", "invalid"}
    assert len(truth) == 42  # 40 - 3 gone - 1 without an address + 5 removed + 1 refused
    for (email, outcome, keep), limit in itertools.product(FILTERS, [3, 7, 50]):
        wanted = [row for row in truth if keep(row)]
        with world.runtime.readers() as session:
            by_offset: list[tuple[Any, ...]] = []
            for offset in range(0, len(wanted) + limit, limit):
                page, total = runs.rows_page(
                    session, every_kind.id, email=email, outcome=outcome, limit=limit, offset=offset
                )
                assert total == len(wanted), (email, outcome)
                by_offset += [_key(row) for row in page]
            by_cursor: list[tuple[Any, ...]] = []
            after = None
            while True:
                page, total = runs.rows_page(
                    session, every_kind.id, email=email, outcome=outcome, limit=limit, after=after
                )
                by_cursor += [_key(row) for row in page]
                if len(page) < limit:
                    break
                after = page[-1].seq
        assert by_offset == wanted, (email, outcome, limit)
        assert by_cursor == wanted, (email, outcome, limit)


def test_the_stream_the_csv_and_the_api_hold_every_row_once_in_order(
    world: World, every_kind: Run, client: TestClient
) -> None:
    truth = _truth(world, every_kind)
    streamed = list(runs.iter_rows(world.runtime.readers, every_kind.id))
    assert [row[:5] for row in streamed] == truth
    with world.runtime.readers() as session:
        lines = list(runs.csv_lines(session, every_kind.id, email="person2"))
    assert lines[1:] == [
        [row[1], row[2] or "", row[3], row[4], row[5] or "", row[6] or ""]
        for row in streamed
        if "person2" in row[1]
    ]

    # the download: every row once, as the csv module writes it (unchanged lines turned into CSV
    # by bytes operations where nothing needs quoting)
    expected = io.StringIO()
    writer = csv.writer(expected)
    writer.writerow(runs.CSV_COLUMNS)
    writer.writerows((r[1], r[2], r[3], r[4] or "pending", r[5], r[6]) for r in streamed)
    downloaded = client.get(f"{API}/runs/{every_kind.id}/rows.csv", headers=world.admin.auth)
    assert downloaded.text == expected.getvalue()

    # the API, by cursor; a forged cursor is refused, naming it
    seen: list[int] = []
    url = f"{API}/runs/{every_kind.id}/rows?limit=6"
    while url:
        body = client.get(url, headers=world.admin.auth).json()
        assert body["total"] == len(truth)
        seen += [item["seq"] for item in body["items"]]
        url = (
            f"{API}/runs/{every_kind.id}/rows?limit=6&cursor={body['next_cursor']}"
            if body["next_cursor"]
            else ""
        )
    assert seen == [row[0] for row in truth]
    for bad in ("nonsense", "WyJ4Il0", "WzEsMl0"):  # not base64 JSON; ["x"]; [1,2]
        answer = client.get(f"{API}/runs/{every_kind.id}/rows?cursor={bad}", headers=world.admin.auth)
        assert answer.status_code == 422, bad
        assert answer.json()["error"]["field"] == "cursor"
    unknown = client.get(f"{API}/runs/{every_kind.id}/rows?outcome=lost", headers=world.admin.auth)
    assert unknown.status_code == 422

    # the runs and the audit log, by cursor
    for path in ("/runs", "/audit"):
        everyone = client.get(f"{API}{path}?limit=500", headers=world.admin.auth).json()
        assert everyone["next_cursor"] is None
        ids, url = [], f"{API}{path}?limit=1"
        while url:
            body = client.get(url, headers=world.admin.auth).json()
            assert body["total"] == everyone["total"]
            ids += [item["id"] for item in body["items"]]
            url = f"{API}{path}?limit=1&cursor={body['next_cursor']}" if body["next_cursor"] else ""
        assert ids == [item["id"] for item in everyone["items"]], path
        assert len(ids) >= 2, path

    # once pruned, the run has no rows (its stored counts stay)
    with transaction(world.runtime.sessions) as session:
        session.execute(sa.delete(RunMember).where(RunMember.run_id == every_kind.id))
        session.execute(sa.delete(RunUnchanged).where(RunUnchanged.run_id == every_kind.id))
    with world.runtime.readers() as session:
        assert runs.rows_page(session, every_kind.id, email=None, outcome=None, limit=10) == ([], 0)
        assert runs.rows_page(session, every_kind.id, email=None, outcome="removed", limit=10) == ([], 0)


def test_deep_pages_and_searches_of_a_long_unchanged_stream() -> None:
    """120,000 unchanged members (compressed as the engine does, in 100,000-line chunks): pages
    from the stream near its start and from the expanded text deeper agree line for line."""
    members = [(f"m{i}@example.com", str(i) if i % 7 else "") for i in range(120_000)]
    compressor = zlib.compressobj(1)
    data = compressor.compress("\n".join(f"{e}\t{k}" for e, k in members[:100_000]).encode())
    data += compressor.compress(("\n" + "\n".join(f"{e}\t{k}" for e, k in members[100_000:])).encode())
    data += compressor.flush()
    keep = run_rows.Kept(987_654, 11, len(members), len(data))

    def fetch(at: int, size: int) -> bytes:
        return data[at : at + size]

    run_rows._EXPANDED.clear()  # from a cold start
    for skip in (0, 1, 4_999, 5_000, 49_999, 65_535, 99_999, 100_000, 119_990, 119_999, 120_000):
        page = run_rows.unchanged_rows(keep, fetch, skip, 25)
        assert [(r.seq, r.email, r.profile_key) for r in page] == [
            (11 + i, e, k or None) for i, (e, k) in enumerate(members[skip : skip + 25], skip)
        ], skip
    total, found = run_rows.search(keep, fetch, "9999@", 2, 3)
    wanted = [i for i, (e, _) in enumerate(members) if "9999@" in e]
    assert total == len(wanted)
    assert [r.seq for r in found] == [11 + i for i in wanted[2:5]]
    _, later = run_rows.search(keep, fetch, "9999@", 0, 2, after=wanted[3], total=False)
    assert [r.seq for r in later] == [11 + i for i in wanted[4:6]]


def test_two_stores_whose_runs_share_an_id_each_show_their_own_unchanged_members(tmp_path: Any) -> None:
    """The expanded stream kept for the next request belongs to one store's run: another store
    (a test's, a restored backup's, one process serving two) has a run of the same id, first
    seq, count and size with other members. Keyed by the run alone, the second store's deep
    page showed the first store's members (the suite saw it once: person24 for person15)."""
    count = run_rows.STREAM_LINES + 10  # a deep page is read from the expanded text
    pages = {}
    for name in ("a", "b"):
        text = "\n".join(f"{name}{i:05d}@example.com\t{i}" for i in range(count)).encode()
        engine = sa.create_engine(f"sqlite:///{tmp_path / name}.db")
        RunUnchanged.metadata.create_all(engine, tables=[sa.Table("run_unchanged", RunUnchanged.metadata)])
        with Session(engine) as session, session.begin():
            # stored, not compressed (level 0): both streams have exactly the same size
            session.add(RunUnchanged(run_id=7, first_seq=1, count=count, data=zlib.compress(text, 0)))
        with Session(engine) as session:
            keep = run_rows.kept(session, 7)
            assert keep is not None
            pages[name] = run_rows.unchanged_rows(keep, run_rows.fetcher(session, 7), count - 3, 3)
        engine.dispose()
    for name, page in pages.items():
        assert [row.email for row in page] == [f"{name}{i:05d}@example.com" for i in range(count - 3, count)]
