"""Synthetic profiles: realistic, deterministic for a seed, and messy where real data is messy."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from segmentsync.errors import Invalid
from segmentsync.profiles.generate import COUNTRIES, generate

AS_OF = date(2025, 6, 1)


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "profiles.duckdb"
    generate(path, rows=20_000, seed=7, as_of=AS_OF)
    return path


def test_columns_and_count(db: Path) -> None:
    columns = [row[0] for row in query(db, "DESCRIBE profiles")]
    assert columns == [
        "profile_id", "email", "first_name", "last_name", "country", "city", "language", "signup_date",
        "last_purchase_at", "total_spend", "orders", "loyalty_tier", "consent_email", "birth_date",
    ]  # fmt: skip
    assert query(db, "SELECT count(*), count(DISTINCT profile_id), min(profile_id) FROM profiles") == [
        (20_000, 20_000, 1)
    ]


def test_the_data_is_realistically_messy(db: Path) -> None:
    ((null_emails, empty, no_at, mixed_case, duplicated, never_bought, no_birth),) = query(
        db,
        """SELECT count(*) FILTER (email IS NULL), count(*) FILTER (email = ''),
                  count(*) FILTER (email <> '' AND NOT contains(email, '@')),
                  count(*) FILTER (email <> lower(email)),
                  count(*) FILTER (email <> '') - count(DISTINCT lower(email)) FILTER (email <> ''),
                  count(*) FILTER (last_purchase_at IS NULL), count(*) FILTER (birth_date IS NULL)
           FROM profiles""",
    )
    assert 50 < null_emails < 200
    assert 20 < empty < 120
    assert 20 < no_at < 120
    assert 300 < mixed_case < 600
    assert 100 < duplicated < 400  # second profiles of the same person
    assert 5_000 < never_bought < 7_000
    assert 1_200 < no_birth < 2_000
    countries = {row[0] for row in query(db, "SELECT DISTINCT country FROM profiles")}
    assert countries == set(COUNTRIES)
    assert query(db, "SELECT count(*) FROM profiles WHERE orders = 0 AND last_purchase_at IS NOT NULL") == [
        (0,)
    ]
    ((first, last),) = query(
        db, "SELECT min(last_purchase_at)::DATE, max(last_purchase_at)::DATE FROM profiles"
    )
    assert first >= date(2015, 6, 1)
    assert last <= AS_OF
    recent = query(db, "SELECT count(*) FROM profiles WHERE last_purchase_at >= DATE '2025-06-01' - 90")
    assert recent[0][0] > 2_000  # "bought in the last 90 days" has members
    assert query(db, "SELECT count(*) FROM profiles WHERE email LIKE '%ł%' OR email LIKE '%ü%'") == [(0,)]


def test_same_seed_same_profiles(tmp_path: Path) -> None:
    def digest(seed: int, name: str) -> object:
        path = tmp_path / name
        generate(path, rows=3_000, seed=seed, as_of=AS_OF)
        return query(path, "SELECT sum(hash(columns(*))) FROM profiles")[0]

    assert digest(1, "a.duckdb") == digest(1, "b.duckdb")
    assert digest(1, "a.duckdb") != digest(2, "c.duckdb")


def test_a_new_generation_replaces_the_table(tmp_path: Path) -> None:
    path = tmp_path / "p.duckdb"
    generate(path, rows=100, seed=1, as_of=AS_OF)
    generate(path, rows=10, seed=1, as_of=AS_OF, table="profiles")
    assert query(path, "SELECT count(*) FROM profiles") == [(10,)]
    assert query(path, "SELECT count(*) FROM duckdb_tables()") == [(1,)]


@pytest.mark.parametrize(("rows", "seed"), [(0, 1), (-5, 1), (10, -1)])
def test_bad_arguments(tmp_path: Path, rows: int, seed: int) -> None:
    with pytest.raises(Invalid):
        generate(tmp_path / "p.duckdb", rows=rows, seed=seed)
