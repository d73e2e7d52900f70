"""Hostile SQL segments: each attempt is refused by the check, naming where, before any engine
sees it; and the engine's own guard (read-only, no file access, the timeout) holds even for a query
that the check never saw."""

from __future__ import annotations

import ibis
import pytest

from segmentsync.errors import Invalid
from segmentsync.profiles.source import KeyQuery, ProfileSource
from segmentsync.segments import sql

# (engine, query, the line and column the refusal names, a word the message holds)
HOSTILE = [
    ("duckdb", "SELECT profile_id FROM profiles; DROP TABLE profiles", (1, 34), "one statement"),
    ("duckdb", "SELECT profile_id FROM profiles;\nDELETE FROM profiles", (2, 1), "one statement"),
    ("postgres", "SELECT 1 AS profile_id; SELECT pg_sleep(100)", (1, 25), "one statement"),
    ("duckdb", "SELECT profile_id FROM profiles /* ; */ ; DROP TABLE profiles", (1, 43), "one statement"),
    # PostgreSQL nests comments: this is one comment to it, and to the check an unclosed one
    (
        "postgres",
        "SELECT profile_id FROM profiles /* /* */ ; DROP TABLE profiles; /* */",
        (1, 21),
        "not closed",
    ),
    ("duckdb", "DROP TABLE profiles", (1, 1), "only a SELECT"),
    ("duckdb", "CREATE TABLE x AS SELECT * FROM profiles", (1, 1), "only a SELECT"),
    ("postgres", "UPDATE profiles SET email = NULL", (1, 1), "only a SELECT"),
    ("duckdb", "INSERT INTO profiles SELECT * FROM profiles", (1, 1), "only a SELECT"),
    ("duckdb", "COPY profiles TO '/tmp/out.csv'", (1, 1), "not COPY"),
    ("duckdb", "ATTACH '/tmp/other.db' AS other", (1, 1), "not ATTACH"),
    ("duckdb", "PRAGMA database_list", (1, 1), "not PRAGMA"),
    ("duckdb", "INSTALL httpfs", (1, 1), "not INSTALL"),
    ("duckdb", "LOAD httpfs", (1, 1), "not LOAD"),
    ("duckdb", "SET enable_external_access = true", (1, 1), "not SET"),
    ("duckdb", "-- just a comment\n  SELECT 1 AS profile_id;\nVACUUM", (3, 1), "one statement"),
    (
        "postgres",
        "WITH gone AS (DELETE FROM profiles RETURNING profile_id) SELECT profile_id FROM gone",
        (1, 15),
        "DELETE",
    ),
    ("postgres", "SELECT profile_id INTO stolen FROM profiles", (1, 19), "INTO"),
    ("postgres", "SELECT profile_id FROM profiles FOR UPDATE", (1, 33), "FOR UPDATE"),
    ("duckdb", "SELECT * FROM read_csv('/etc/passwd')", (1, 15), "read_csv"),
    ("duckdb", "SELECT * FROM read_parquet('s3://bucket/x.parquet')", (1, 15), "read_parquet"),
    ("duckdb", "SELECT * FROM '/etc/passwd'", (1, 15), "file or URL"),
    ("duckdb", 'SELECT * FROM "secrets.csv"', (1, 15), "file or URL"),
    ("duckdb", "SELECT profile_id FROM profiles WHERE getenv('HOME') IS NOT NULL", (1, 39), "getenv"),
    ("duckdb", "SELECT * FROM glob('/home/*')", (1, 15), "glob"),
    (
        "duckdb",
        "SELECT *\nFROM profiles\nWHERE profile_id IN (SELECT 1 FROM query('DROP TABLE profiles'))",
        (3, 36),
        "query",
    ),
    ("postgres", "SELECT pg_read_file('/etc/passwd') AS profile_id", (1, 8), "pg_read_file"),
    (
        "postgres",
        "SELECT profile_id FROM profiles WHERE set_config('x', 'y', false) = 'y'",
        (1, 39),
        "set_config",
    ),
    ("postgres", "SELECT * FROM dblink('host=evil', 'select 1') AS t(profile_id int)", (1, 15), "dblink"),
    ("postgres", "SELECT lo_import('/etc/passwd') AS profile_id", (1, 8), "lo_import"),
    ("postgres", "SELECT nextval('profiles_seq') AS profile_id", (1, 8), "nextval"),
    ("pyspark", "SELECT reflect('java.lang.Runtime', 'getRuntime') AS profile_id", (1, 8), "reflect"),
    ("pyspark", "SELECT * FROM parquet.`/data/x.parquet`", (1, 15), "file or URL"),
    ("duckdb", "SELECT profile_id FROM profiles WHERE", (1, 33), "cannot be parsed"),
]


@pytest.mark.parametrize(("engine", "query", "where", "word"), HOSTILE, ids=[q for _, q, _, _ in HOSTILE])
def test_a_hostile_query_is_refused_naming_where(
    engine: str, query: str, where: tuple[int, int], word: str
) -> None:
    with pytest.raises(Invalid) as refused:
        sql.check(query, engine)
    assert refused.value.code in ("unsafe_sql", "invalid_sql")
    assert refused.value.field == "sql"
    assert refused.value.message.startswith(f"line {where[0]}, column {where[1]}:"), refused.value.message
    assert word in refused.value.message
    assert (refused.value.details["line"], refused.value.details["column"]) == where


def test_there_are_more_than_twenty_attempts() -> None:
    assert len(HOSTILE) >= 20


@pytest.mark.parametrize(
    "query",
    [
        "SELECT p.profile_id FROM profiles p JOIN orders o ON o.profile_id = p.profile_id",
        "WITH big AS (SELECT profile_id, sum(amount) AS s FROM orders GROUP BY 1)\n"
        "SELECT profile_id FROM big WHERE s > 100 -- the big spenders",
        "SELECT profile_id FROM profiles UNION SELECT profile_id FROM orders",
        "SELECT profile_id FROM profiles WHERE email LIKE '%;DROP TABLE x%'",
        "SELECT unnest([1, 2]) AS profile_id",
    ],
)
def test_a_plain_select_passes_and_runs_without_its_comments(query: str) -> None:
    checked = sql.check(query, "duckdb")
    assert checked.sql.upper().startswith(("SELECT", "WITH"))
    assert "--" not in checked.sql
    assert "the big spenders" not in checked.sql


def test_empty_and_oversized_sql_are_refused() -> None:
    for text in ("", "   \n", "-- only a comment"):
        with pytest.raises(Invalid):
            sql.check(text, "duckdb")
    with pytest.raises(Invalid, match="at most"):
        sql.check("SELECT 1 AS profile_id " + " " * sql.MAX_SQL_CHARS, "duckdb")


# ------------------------------------------------------------ the engine's own guard


def test_duckdb_refuses_files_even_for_a_query_the_check_never_saw(duckdb_profiles: ProfileSource) -> None:
    sneaky = KeyQuery("SELECT 1 AS profile_id FROM read_csv('/etc/passwd')")
    with pytest.raises(Invalid) as refused:
        duckdb_profiles.count(duckdb_profiles.segment(sneaky))
    assert refused.value.code == "sql_failed"
    assert "disabled by configuration" in refused.value.message


@pytest.mark.postgres
def test_postgres_runs_a_segment_read_only(postgres_profiles: ProfileSource) -> None:
    con = ibis.connect("postgres://" + postgres_profiles.url.split("://", 1)[1])
    con.raw_sql("CREATE SEQUENCE IF NOT EXISTS segment_test_seq").close()
    con.disconnect()
    sneaky = KeyQuery("SELECT profile_id FROM profiles WHERE nextval('segment_test_seq') > 0")  # a write
    with pytest.raises(Invalid) as refused:
        postgres_profiles.count(postgres_profiles.segment(sneaky))
    assert "read-only transaction" in refused.value.message


def cross_join(engine: str) -> str:
    """A query that would run for hours: the profiles times 10¹⁰ rows."""
    numbers = {
        "duckdb": "range(100000)",
        "postgres": "generate_series(1, 100000)",
        "pyspark": "range(100000)",
    }
    series = numbers[engine]
    return f"SELECT p.profile_id FROM profiles p, {series} AS a, {series} AS b"


def test_a_huge_cross_join_is_stopped_by_the_timeout(engine_source: ProfileSource) -> None:
    source = ProfileSource(engine_source.url, sql_timeout=0.5, lock_wait=1)
    query = KeyQuery(sql.check(cross_join(source.engine), source.engine).sql)
    with pytest.raises(Invalid) as stopped:
        source.count(source.segment(query))
    assert stopped.value.code == "sql_timeout"
    assert "0.5 s" in stopped.value.message
    # The connection is usable afterwards (Spark: the job group was cleared).
    assert source.row_count() == 12
