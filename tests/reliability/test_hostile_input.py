"""Hostile input through the REST API and the pages: SQL fragments in segment rules, column names
and searches; path traversal in file and table names and static URLs; oversized and deeply
nested requests; spreadsheet formulas in downloaded CSV. Each is refused (or taken literally),
never executed, and nothing breaks: no 5xx, the tables are all still there."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from exports.world import World
from segmentsync.api.app import create_app
from segmentsync.api.body_limit import MAX_BODY_BYTES
from segmentsync.errors import Invalid
from segmentsync.profiles.load import load_file

from .scenario import ON_SQLITE, drive, make_export, platform_list, start_run, write_profiles

API = "/api/v1"
HOSTILE_COLUMN = 'x"); DROP TABLE profiles; --'
QUOTE_COLUMN = "Robert'); DROP TABLE runs;--"
SQL_VALUES = ["PL' OR '1'='1", "PL'; DROP TABLE profiles; --", '" OR ""="', "%", "_", "\\"]


@pytest.fixture
def app(world: World) -> FastAPI:
    return create_app(world.runtime)


@pytest.fixture
def admin(app: FastAPI, world: World) -> Iterator[TestClient]:
    with TestClient(app, headers=world.admin.auth) as client:
        yield client


def _profiles_with_hostile_columns(world: World) -> None:
    write_profiles(world.runtime, 200)
    con = duckdb.connect(str(world.runtime.settings.data_dir / "profiles.duckdb"))
    try:
        con.execute(
            f'ALTER TABLE profiles ADD COLUMN "{HOSTILE_COLUMN.replace(chr(34), chr(34) * 2)}" VARCHAR'
        )
        con.execute(f'ALTER TABLE profiles ADD COLUMN "{QUOTE_COLUMN}" VARCHAR')
        # one profile in ten holds SQL as its value
        con.execute(
            f'UPDATE profiles SET "{HOSTILE_COLUMN.replace(chr(34), chr(34) * 2)}" = '
            "CASE WHEN profile_id % 10 = 0 THEN 'x'' OR 1=1 --' ELSE 'plain' END, "
            f"\"{QUOTE_COLUMN}\" = 'Bobby ' || profile_id"
        )
    finally:
        con.close()


def _count(client: TestClient, rule: dict[str, Any]) -> Any:
    answer = client.post(f"{API}/segments/count", json={"rules": {"op": "and", "items": [rule]}})
    assert answer.status_code < 500, answer.text
    return answer


@ON_SQLITE
def test_sql_in_rules_columns_and_searches_is_data(world: World, admin: TestClient) -> None:
    _profiles_with_hostile_columns(world)
    for value in SQL_VALUES:  # taken literally: no profile has these countries
        for operator in ("eq", "contains", "starts_with"):
            answer = _count(admin, {"column": "country", "operator": operator, "value": value})
            assert answer.json()["member_count"] == 0, (value, operator)
    nul = _count(admin, {"column": "country", "operator": "eq", "value": "PL\x00' OR 1=1"})
    assert nul.status_code == 422
    assert "NUL" in nul.json()["error"]["message"]
    in_list = _count(admin, {"column": "country", "operator": "in", "value": ["PL", "PL' OR '1'='1"]})
    assert in_list.json()["member_count"] == 50
    quoted = _count(admin, {"column": HOSTILE_COLUMN, "operator": "eq", "value": "x' OR 1=1 --"})
    assert quoted.json()["member_count"] == 20
    for column in ("country; DROP TABLE profiles", "country) OR (1=1", '"; DROP TABLE profiles; --'):
        unknown = _count(admin, {"column": column, "operator": "eq", "value": "PL"})
        assert unknown.status_code == 422, unknown.text
        assert "column" in unknown.json()["error"]["message"]

    # an export reads its email and attributes from hostile column names; sends them as data
    export = admin.post(
        f"{API}/exports",
        json={
            "name": "'; DROP TABLE exports; --",
            "connection_id": world.cm.connection_id,
            "list_id": world.cm.list_id,
            "email_column": "email",
            "attributes": [{"column": QUOTE_COLUMN, "target": "Name"}],
            "segment_ids": [world.segments["PL"]],
        },
    )
    assert export.status_code == 201, export.text
    bad_email = admin.patch(f"{API}/exports/{export.json()['id']}", json={"email_column": "email; --"})
    assert bad_email.status_code == 422
    run, _ = drive(world.runtime, start_run(world, export.json()["id"]))
    assert (run.status.value, run.new) == ("succeeded", 50)
    assert "person4@example.com" in platform_list(world, "campaign_monitor")

    # searches of a run's rows: LIKE wildcards and quotes are matched literally
    for needle, found in (("' OR 1=1 --", 0), ("%", 0), ("_", 0), ("person4@", 1), ("PERSON4@EX", 1)):
        answer = admin.get(f"{API}/runs/{run.id}/rows", params={"email": needle})
        assert answer.status_code == 200, answer.text
        assert answer.json()["total"] == found, needle
    assert admin.get(f"{API}/runs/{run.id}/rows", params={"outcome": "new' OR '1'='1"}).status_code == 422

    con = duckdb.connect(str(world.runtime.settings.data_dir / "profiles.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM profiles").fetchone() == (200,)
    con.close()
    assert admin.get(f"{API}/exports").json()["total"] == 1
    assert admin.get(f"{API}/runs").json()["total"] == 1


# ---------------------------------------------------------------- path traversal


TRAVERSALS = [
    "/static/../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/static/%2e%2e%5c%2e%2e%5c%2e%2e%5cetc%5cpasswd",
    "/static/....//....//etc/passwd",
    "/static//etc/passwd",
    "/static/%00../../etc/passwd",
]


@ON_SQLITE
@pytest.mark.parametrize("path", TRAVERSALS)
def test_static_files_never_leave_their_folder(app: FastAPI, path: str) -> None:
    with TestClient(app) as client:
        answer = client.get(path)
    assert answer.status_code in (400, 404), (path, answer.status_code)
    assert "root:" not in answer.text


def test_loads_from_an_upload_folder_never_leave_it(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    secret = tmp_path / "secret.csv"
    secret.write_text("profile_id,email\n1,secret@example.com\n")
    (uploads / "link.csv").symlink_to(secret)
    store = tmp_path / "profiles.duckdb"
    for name in ("../secret.csv", "./../secret.csv", "sub/../../secret.csv", str(secret), "link.csv"):
        with pytest.raises(Invalid, match="outside the folder files may be loaded from"):
            load_file(store, uploads / name, root=uploads)
    for table in ("../profiles", "profiles; DROP TABLE x", "a/b", 'p"q'):
        with pytest.raises(Invalid, match="table name"):
            load_file(store, secret, table=table)
    assert not store.exists() or os.path.getsize(store) >= 0  # nothing was loaded from outside


# ---------------------------------------------------------------- oversized and nested requests


@ON_SQLITE
def test_oversized_requests_are_refused_with_413_before_they_are_read(world: World, app: FastAPI) -> None:
    big = "x" * (MAX_BODY_BYTES + 1)
    with TestClient(app, headers=world.admin.auth) as client:
        declared = client.post(f"{API}/segments", json={"name": big, "rules": {"items": []}})
        chunked = client.post(
            f"{API}/segments",
            content=iter([b'{"name": "', big.encode(), b'"}']),
            headers={"Content-Type": "application/json"},
        )
        form = client.post("/sign-in", data={"email": big, "password": "x", "csrf_token": "x"})
        just_under = client.post(
            f"{API}/segments", json={"name": "y" * (MAX_BODY_BYTES - 100), "rules": {"items": []}}
        )
    for answer in (declared, chunked, form):
        assert answer.status_code == 413, answer.text[:200]
        error = answer.json()["error"]
        assert (error["status"], error["code"]) == (413, "too_large")
        assert "1,048,576 bytes" in error["message"]
    assert just_under.status_code == 422  # read, and refused for what it says (name too long)


@ON_SQLITE
def test_deeply_nested_and_wide_input_is_refused_not_a_crash(world: World, admin: TestClient) -> None:
    deep: dict[str, Any] = {"column": "country", "operator": "eq", "value": "PL"}
    for _ in range(50):
        deep = {"op": "and", "items": [deep]}
    nested_json = b'{"rules": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    wide = {"op": "or", "items": [{"column": "country", "operator": "eq", "value": "PL"}] * 5_000}
    answers = [
        admin.post(f"{API}/segments/count", json={"rules": deep}),
        admin.post(
            f"{API}/segments/count", content=nested_json, headers={"Content-Type": "application/json"}
        ),
        admin.post(f"{API}/segments/count", json={"rules": wide}),
        admin.post(
            f"{API}/segments/count",
            json={"rules": {"items": [{"column": "country", "operator": "in", "value": ["x"] * 20_000}]}},
        ),
    ]
    for answer in answers:
        assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
        assert answer.json()["error"]["message"]


# ---------------------------------------------------------------- formulas in downloads


@ON_SQLITE
def test_spreadsheet_formulas_from_profiles_are_defused_in_csv_downloads(
    world: World, admin: TestClient
) -> None:
    formulas = ['=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1)"]
    write_profiles(world.runtime, 10)
    con = duckdb.connect(str(world.runtime.settings.data_dir / "profiles.duckdb"))
    con.executemany(
        "UPDATE profiles SET email = ? WHERE profile_id = ?", [[f, i + 1] for i, f in enumerate(formulas)]
    )
    con.close()
    run, _ = drive(world.runtime, start_run(world, make_export(world, "campaign_monitor")))
    assert run.invalid == len(formulas)
    body = admin.get(f"{API}/runs/{run.id}/rows.csv").text
    cells = [cell for row in csv.reader(io.StringIO(body)) for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@")]
    assert {f"'{formula}" for formula in formulas} <= set(cells)
