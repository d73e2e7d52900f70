"""Searching a run's rows by part of an email finds what a plain scan finds — on a run whose rows
are all in ``run_members`` (a first run: every member new), by offset and by cursor, whether the
matches are collected in one scan or (over ``SEARCH_SEQS``) paged and counted; the search is
literal (``%``, ``_`` and ``\\`` find themselves) and case-insensitive for the reader."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
import sqlalchemy as sa

from engine.test_run import make_export, run_export
from segmentsync.db import transaction
from segmentsync.exports import run_rows, runs, views
from segmentsync.exports.models import Run, RunMember, RunUnchanged

from .world import World

NEEDLES = ["person1", "PERSON1", "0@", "@example.com", "person39@", "%", "_", "\\", "nobody", "1"]


@pytest.fixture
def first_run(world: World) -> Run:
    run = run_export(world, make_export(world, "campaign_monitor"))
    with world.runtime.readers() as session:
        assert session.scalar(sa.select(sa.func.count()).where(RunUnchanged.run_id == run.id)) == 0
    return run


def _truth(world: World, run: Run, needle: str) -> list[tuple[Any, ...]]:
    """The plain scan: every row of the run, those whose email holds the needle (any case)."""
    with world.runtime.readers() as session:
        rows = session.scalars(sa.select(RunMember).where(RunMember.run_id == run.id).order_by(RunMember.seq))
        return [(m.seq, m.email) for m in rows if needle.lower() in m.email.lower()]


@pytest.mark.parametrize("collected", [run_rows.SEARCH_SEQS, 2], ids=["one scan", "paged and counted"])
def test_a_search_finds_what_a_plain_scan_finds(
    world: World, first_run: Run, collected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_rows, "SEARCH_SEQS", collected)
    for needle in NEEDLES:
        wanted = _truth(world, first_run, needle)
        if needle in ("%", "_", "\\", "nobody"):
            assert wanted == [], needle
        else:
            assert wanted, needle
        for limit in (1, 3, 50):
            by_offset: list[tuple[Any, ...]] = []
            by_cursor: list[tuple[Any, ...]] = []
            after = None
            with world.runtime.readers() as session:
                for offset in range(0, len(wanted) + limit, limit):
                    page, total = runs.rows_page(
                        session, first_run.id, email=needle, outcome=None, limit=limit, offset=offset
                    )
                    assert total == len(wanted), (needle, limit, offset)
                    by_offset += [(row.seq, row.email) for row in page]
                while True:
                    page, _ = runs.rows_page(
                        session, first_run.id, email=needle, outcome=None, limit=limit, after=after
                    )
                    by_cursor += [(row.seq, row.email) for row in page]
                    if len(page) < limit:
                        break
                    after = page[-1].seq
            assert by_offset == wanted, (needle, limit)
            assert by_cursor == wanted, (needle, limit)


HOSTILE = [
    "=1+2",
    "+x",
    "-3",
    "@SUM(1)",
    "\tTab",
    "\rReturn",
    'say "hi"',
    "a,b",
    "two\nlines",
    "",
    None,
    "plain",
]


def test_the_csv_cells_made_by_the_database_are_the_csv_modules(world: World, first_run: Run) -> None:
    """Codes, messages and keys that need quoting or defusing come out byte for byte as the csv
    module writes them after defusing — unfiltered (the driver's cursor) and searched."""
    with transaction(world.runtime.sessions) as session:
        seqs = list(session.scalars(sa.select(RunMember.seq).where(RunMember.run_id == first_run.id)))
        for at, seq in enumerate(seqs):
            value = HOSTILE[at % len(HOSTILE)]
            session.execute(
                sa.update(RunMember)
                .where(RunMember.run_id == first_run.id, RunMember.seq == seq)
                .values(code=value, message=HOSTILE[(at + 3) % len(HOSTILE)], profile_key=value,
                        outcome=None if at % 5 == 0 else RunMember.outcome)
            )  # fmt: skip
    with world.runtime.readers() as session:
        members = list(
            session.scalars(
                sa.select(RunMember).where(RunMember.run_id == first_run.id).order_by(RunMember.seq)
            )
        )
    for needle in (None, "person1"):
        expected = io.StringIO()
        writer = csv.writer(expected)
        writer.writerow(runs.CSV_COLUMNS)
        for m in members:
            if needle is None or needle in m.email:
                cells = (m.email, m.profile_key, m.action.value, m.outcome.value if m.outcome else "pending")
                writer.writerow([*map(run_rows.defused, cells), *map(run_rows.defused, (m.code, m.message))])
        made = "".join(views.csv_chunks(world.runtime, first_run.id, email=needle, outcome=None))
        assert made == expected.getvalue(), needle


# Cells the csv module writes as they are (nothing to quote, nothing to defuse) but that a careless
# line-by-concatenation would get wrong or that look like trouble: empty, a tab or a formula
# character inside, backslashes, PostgreSQL's end-of-data marker, non-ASCII.
CALM = ["", None, "a\tb", "x=1", "a-b", "\\.", "\\", "ünïcødé ✓", "plain", "1+1", "a@b"]


def _expected_csv(members: list[RunMember]) -> str:
    expected = io.StringIO()
    writer = csv.writer(expected)
    writer.writerow(runs.CSV_COLUMNS)
    for m in members:
        cells = (m.email, m.profile_key, m.action.value, m.outcome.value if m.outcome else "pending")
        writer.writerow([*map(run_rows.defused, cells), *map(run_rows.defused, (m.code, m.message))])
    return expected.getvalue()


def test_the_csv_lines_made_by_the_database_are_the_csv_modules(
    world: World, first_run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 4 rows: some only calm cells (the database writes the lines), some with one cell
    to quote or defuse among calm ones (the chunk's cells then go through the csv module) — the
    download is byte for byte the csv module's either way."""
    monkeypatch.setattr(run_rows, "CHUNK_ROWS", 4)
    with transaction(world.runtime.sessions) as session:
        seqs = sorted(session.scalars(sa.select(RunMember.seq).where(RunMember.run_id == first_run.id)))
        for at, seq in enumerate(seqs):
            calm = CALM[at % len(CALM)]
            values = {"code": calm, "message": CALM[(at + 5) % len(CALM)], "profile_key": calm}
            if at % 12 == 9:  # every third chunk holds one cell to quote or defuse
                values["message"] = HOSTILE[(at // 12) % 9]  # the first nine: each needs care
            session.execute(
                sa.update(RunMember)
                .where(RunMember.run_id == first_run.id, RunMember.seq == seq)
                .values(**values)
            )
    with world.runtime.readers() as session:
        members = list(
            session.scalars(
                sa.select(RunMember).where(RunMember.run_id == first_run.id).order_by(RunMember.seq)
            )
        )
    made = "".join(views.csv_chunks(world.runtime, first_run.id, email=None, outcome=None))
    assert made == _expected_csv(members)


def test_lines_are_taken_as_they_are_only_when_the_csv_module_would_write_them_so() -> None:
    """plain_csv: True for lines of calm cells; for any cell that needs quoting or defusing,
    wherever it is in the line or the chunk, False."""

    def joined(rows: list[tuple[Any, ...]]) -> str:
        return "".join(",".join("" if c is None else c for c in row) + "\r\n" for row in rows)

    def written(rows: list[tuple[Any, ...]]) -> str:
        out = io.StringIO()
        csv.writer(out).writerows([[run_rows.defused(c) for c in row] for row in rows])
        return out.getvalue()

    calm = [(f"p{n}@example.com", CALM[n % len(CALM)], "new", "new", CALM[(n + 1) % len(CALM)], None)
            for n in range(22)]  # fmt: skip
    assert run_rows.plain_csv(joined(calm), len(calm))
    assert joined(calm) == written(calm)
    for bad in [*HOSTILE[:9], "\n", "\r\n", '"', "\t", "=", "a,", "-1"]:
        for row, column in [(0, 0), (0, 1), (7, 0), (7, 5), (21, 4), (21, 5)]:
            rows = list(calm)
            rows[row] = tuple(bad if n == column else c for n, c in enumerate(rows[row]))
            assert joined(rows) != written(rows), (bad, row, column)
            assert not run_rows.plain_csv(joined(rows), len(rows)), (bad, row, column)
