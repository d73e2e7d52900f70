"""The year-shaped store (``benchmarks/year.py``): it writes exactly what the run engine writes —
checked against a real small export — and, built small, every page and API GET answers each role
as the policy says (200 where it may see it), including a run's rows by page, filter and search."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from benchmarks import bench_year, year
from engine.test_run import change_profiles, make_export, run_export  # tests/ is on sys.path
from exports.world import World, build_world, sandbox_settings
from segmentsync import counts
from segmentsync.api.app import create_app
from segmentsync.auth.models import AuditEntry, Role
from segmentsync.auth.policy import Action, allowed
from segmentsync.exports import run_rows, runs
from segmentsync.exports.models import Delivered, Run, RunMember
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.settings import Settings

HASH = re.compile(r"^[0-9a-f]{16}$")
NAMES = ("email", "profile_key", "hash", "payload", "action", "outcome", "code", "message")


@pytest.fixture
def settings(tmp_path: Path, sandbox: Sandbox) -> Settings:
    return sandbox_settings(tmp_path, sandbox)


def _rows(runtime: Runtime, run_id: int) -> list[dict[str, Any]]:
    with runtime.readers() as session:
        return [
            {name: getattr(m, name) for name in ("seq", *NAMES)}
            for m in session.scalars(
                sa.select(RunMember).where(RunMember.run_id == run_id).order_by(RunMember.seq)
            )
        ]


def _shape(rows: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Per action: the columns that hold a value."""
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(str(row["action"]), set()).update(name for name in NAMES if row[name] is not None)
    return found


def test_the_generator_writes_what_the_engine_writes(runtime: Runtime, sandbox: Sandbox) -> None:
    world: World = build_world(runtime, sandbox)
    world.sandbox.cc_faults(requests_per_second=None, instant_activities=True)
    export_id = make_export(
        world, "campaign_monitor", attributes=[{"column": "first_name", "target": "Name"}]
    )
    first = run_export(world, export_id)
    change_profiles(world, "UPDATE profiles SET first_name = 'Changed' WHERE profile_id IN (5, 30)")
    change_profiles(world, "UPDATE profiles SET email = NULL WHERE profile_id = 12")
    second = run_export(world, export_id)
    real = _rows(runtime, second.id)
    with runtime.readers() as session:
        keep = run_rows.kept(session, second.id)
        assert keep is not None
        lines = [
            line.split(b"\t")
            for _, block in run_rows.blocks(keep, run_rows.fetcher(session, second.id))
            for line in block.split(b"\n")
        ]
        delivered = {
            d.email: d for d in session.scalars(sa.select(Delivered).where(Delivered.export_id == export_id))
        }
    sent = [row for row in real if row["action"] == "update"]
    invalid = [row for row in real if row["action"] == "invalid"]
    unchanged = [(email.decode(), key.decode()) for email, key in lines]

    # the generator, given the same members
    names = {"5": "Changed", "30": "Changed"}
    made = year.run_rows(
        10_000,
        "campaign_monitor",
        [(row["email"], row["profile_key"], names[row["profile_key"]]) for row in sent],
        unchanged,
        [(row["email"], row["profile_key"], row["code"], row["message"]) for row in invalid],
    )
    generated = [dict(zip(("run_id", "seq", *NAMES), row, strict=True)) for row in made.members]

    # the same columns hold values, action by action; the same encodings
    assert _shape(generated) == dict(_shape(real).items())
    assert [(r["action"], r["outcome"]) for r in real] == [(r["action"], r["outcome"]) for r in generated]
    for ours, theirs in zip(generated, real, strict=True):
        assert ours["seq"] == theirs["seq"]
        assert ours["payload"] == theirs["payload"]  # the platform's JSON, byte for byte
        assert (ours["hash"] is None) == (theirs["hash"] is None)
        assert ours["hash"] is None or (HASH.match(ours["hash"]) and HASH.match(theirs["hash"]))
    # the unchanged stream: the same place, count and lines; the engine's compression
    assert made.unchanged is not None
    assert (made.unchanged[0], made.unchanged[1]) == (keep.first_seq, keep.count)
    gen_keep = run_rows.Kept(0, made.unchanged[0], made.unchanged[1], len(made.unchanged[2]))
    data = made.unchanged[2]
    assert [
        line.split(b"\t")
        for _, block in run_rows.blocks(gen_keep, lambda at, size: data[at : at + size])
        for line in block.split(b"\n")
    ] == lines
    # the invariants: seq dense from 1, the rows sent in email order, counts that add up, and
    # the delivered state holding what was sent, by the run that sent it
    everyone = sorted(
        [r["seq"] for r in generated] + list(range(keep.first_seq, keep.first_seq + keep.count))
    )
    assert everyone == list(range(1, len(everyone) + 1))
    assert [r["email"] for r in sent] == sorted(r["email"] for r in sent)
    assert made.counts == {
        "new": 0,
        "updated": second.updated,
        "unchanged": second.unchanged,
        "invalid": second.invalid,
    }
    for row in sent:  # the engine's delivered state: what it sent, by the run that sent it
        assert (delivered[row["email"]].hash, delivered[row["email"]].run_id) == (row["hash"], second.id)
    by_email = {row["email"]: row for row in generated}
    assert [(email, hash_, key) for email, hash_, key in made.delivered] == [
        (email, by_email[email]["hash"], by_email[email]["profile_key"]) for email, _, _ in made.delivered
    ]
    assert first.new == 40

    # written by the generator, read back as the engine's run reads
    with runtime.engine.begin() as connection:
        connection.execute(
            sa.insert(Run),
            [
                year._run(
                    10_000,
                    export_id,
                    "generated",
                    "succeeded",
                    second.created_at,
                    counts=made.counts,
                    members=40,
                )
            ],
        )
        year.write_run_rows(connection, export_id, 10_000, made)
    with runtime.readers() as session:
        ours, ours_total = runs.rows_page(session, 10_000, email=None, outcome=None, limit=100)
        theirs, theirs_total = runs.rows_page(session, second.id, email=None, outcome=None, limit=100)
    assert ours_total == theirs_total == 40
    assert [row[1:] for row in ours] == [row[1:] for row in theirs]


def _expected(role: Role, actions: list[str]) -> int:
    return 200 if all(allowed(role, Action(action)) for action in actions) else 403


def test_a_small_year_store_builds_and_every_page_answers_each_role(
    runtime: Runtime, sandbox: Sandbox
) -> None:
    store = year.build(runtime, sandbox, year.SMALL)
    client = TestClient(create_app(runtime))
    spec = client.get("/api/v1/openapi.json").json()
    actions = dict(bench_year.api_paths(spec))
    values = bench_year.ids(store, store.lists)
    wrong = []
    for role in Role:
        signed = client.post(
            "/api/v1/session", json={"email": store.users[role][0], "password": year.PASSWORD}
        )
        assert signed.status_code < 400, signed.text
        for kind, url in bench_year.targets(spec, store, store.lists):
            answer = client.get(url, follow_redirects=False)
            if kind == "api":
                template = next(t for t in actions if url in bench_year.fill(t, values))
                expected = _expected(role, actions[template])
            else:
                expected = 200 if role is Role.ADMIN else answer.status_code
            if answer.status_code != expected or answer.status_code >= 500:
                wrong.append((role.value, url, answer.status_code, expected))
        client.cookies.clear()
    assert wrong == []

    signed = client.post(
        "/api/v1/session", json={"email": store.users[Role.VIEWER][0], "password": year.PASSWORD}
    )
    for label, url in bench_year.rows_urls(store):
        answer = client.get(url.replace("offset=999950", f"offset={year.SMALL.big - 50}"))
        assert answer.status_code == 200, (label, answer.text[:300])
    full, again = store.big_runs
    body = client.get(f"/api/v1/runs/{again}/rows?limit=50&offset={year.SMALL.big - 10}").json()
    assert (body["total"], len(body["items"])) == (year.SMALL.big, 10)
    found = client.get(f"/api/v1/runs/{full}/rows?email=person12@").json()
    assert [item["email"] for item in found["items"]] == ["person12@example.com"]
    lines = client.get(f"/api/v1/runs/{again}/rows.csv").text.strip().split("\n")
    assert len(lines) == year.SMALL.big + 1
    with runtime.readers() as session:  # the bulk inserts went through the counting triggers
        for table, model in (("runs", Run), ("audit_log", AuditEntry)):
            assert counts.total(session, table) == session.scalar(
                sa.select(sa.func.count()).select_from(model)
            )
    assert json.dumps(spec)  # the walk read the whole document
