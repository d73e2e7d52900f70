"""The profile source over the embedded DuckDB file: short-lived connections, locks, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from segmentsync.errors import ConfigError, Invalid, NotFound, Retriable
from segmentsync.profiles import store
from segmentsync.profiles.generate import generate
from segmentsync.profiles.load import load_file
from segmentsync.profiles.source import ProfileSource, engine_name, redact
from segmentsync.segments.rules import parse
from segmentsync.settings import Settings

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read")
print("holding", flush=True)
sys.stdin.readline()
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("source") / "profiles.duckdb"
    generate(path, rows=25_000, seed=3)
    return path


@pytest.fixture
def source(db: Path) -> ProfileSource:
    return ProfileSource(f"duckdb://{db}", lock_wait=0.3)


def test_settings_point_at_the_embedded_file(tmp_path: Path) -> None:
    source = ProfileSource.from_settings(
        Settings(data_dir=tmp_path, profiles_table="people", profiles_key="id")
    )
    assert source.url == f"duckdb://{tmp_path / 'profiles.duckdb'}"
    assert (source.engine, source.table_name, source.key) == ("duckdb", "people", "id")
    with pytest.raises(
        NotFound, match=r"no profile store at .* yet: load profiles with `segmentsync profiles load"
    ):
        source.columns()


def test_a_missing_table_or_key_is_explained(db: Path) -> None:
    with pytest.raises(NotFound, match=r"'people' does not exist .* \(tables there: profiles\)"):
        ProfileSource(f"duckdb://{db}", table="people").table()
    with pytest.raises(ConfigError, match="key column 'id' is not in the profile table 'profiles'"):
        ProfileSource(f"duckdb://{db}", key="id").table()


def test_stream_gives_bounded_arrow_batches(source: ProfileSource) -> None:
    table = source.table()
    batches = list(source.stream(table.select("profile_id", "email"), batch_rows=4_000))
    assert all(0 < b.num_rows <= 4_000 for b in batches)
    assert sum(b.num_rows for b in batches) == 25_000
    assert batches[0].schema.names == ["profile_id", "email"]
    with pytest.raises(Invalid, match="batch_rows"):
        next(source.stream(table, batch_rows=0))


def test_queries_may_interleave_with_a_stream(source: ProfileSource) -> None:
    """Each query has its own connection: a count while a stream is half read breaks nothing."""
    table = source.table()
    stream = source.stream(table.select("profile_id"), batch_rows=1_000)
    first = next(stream)
    assert source.count(table) == 25_000
    assert source.columns()["email"] == "string"
    assert first.num_rows + sum(b.num_rows for b in stream) == 25_000


def test_members_checks_its_arguments(source: ProfileSource) -> None:
    rule = parse({"items": [{"column": "country", "operator": "eq", "value": "PL"}]})
    with pytest.raises(Invalid, match="at least one segment"):
        source.members([], ["email"])
    with pytest.raises(Invalid, match="unknown profile column"):
        source.members([rule], ["email", "shoe_size"])
    assert source.members([rule], ["profile_id", "email"]).columns == ("profile_id", "email")


def hold(db: Path, mode: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "holding"
    return process


def release(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=10)


def test_a_writer_in_another_process_is_a_clear_retriable_error(source: ProfileSource, db: Path) -> None:
    writer = hold(db, "write")
    try:
        with pytest.raises(Retriable) as info:
            source.count(source.table())
    finally:
        release(writer)
    assert "is locked by another process" in info.value.message
    assert info.value.code == "profile_store_locked"
    assert source.count(source.table()) == 25_000  # the lock is gone, so are the errors


def test_an_attached_query_waits_for_a_writer_the_same_way(source: ProfileSource, db: Path) -> None:
    """A run's workspace attaching the file meets a writer as a per-query connection does."""
    query = source.attachable(source.table())
    assert query is not None
    con = duckdb.connect()
    writer = hold(db, "write")
    try:
        with pytest.raises(Retriable) as info:
            store.attach(con, query.path, "profile_source", lock_wait=query.lock_wait)
    finally:
        release(writer)
    assert info.value.code == "profile_store_locked"
    store.attach(con, query.path, "profile_source", lock_wait=query.lock_wait)
    con.execute("USE profile_source")
    assert con.execute(f"SELECT count(*) FROM ({query.sql})").fetchone() == (25_000,)


def test_a_load_waits_for_readers_then_says_so(tmp_path: Path) -> None:
    db = tmp_path / "p.duckdb"
    csv = tmp_path / "p.csv"
    csv.write_text("profile_id,email\n1,a@x\n")
    load_file(db, csv)
    reader = hold(db, "read")
    try:
        with pytest.raises(Retriable, match="locked by another process"):
            load_file(db, csv, lock_wait=0.3)
    finally:
        release(reader)
    assert load_file(db, csv).rows == 1


def test_connection_failures_never_show_the_password() -> None:
    url = "postgresql://segmentsync:s3cret-pass@127.0.0.1:1/profiles"
    source = ProfileSource(url)
    assert "s3cret" not in repr(source)
    with pytest.raises(Retriable) as info:
        source.columns()
    assert "s3cret" not in info.value.message
    assert (
        "cannot connect to the profile source postgresql://segmentsync:•••@127.0.0.1:1/profiles"
        in info.value.message
    )


@pytest.mark.parametrize(
    ("url", "engine"),
    [
        ("duckdb:///x.duckdb", "duckdb"),
        ("postgresql+psycopg://u@h/db", "postgres"),
        ("postgres://u@h/db", "postgres"),
        ("pyspark:///tmp/wh", "pyspark"),
        ("snowflake://u:p@account/db/schema", "snowflake"),
    ],
)
def test_engine_names(url: str, engine: str) -> None:
    assert engine_name(url) == engine
    assert ":p@" not in redact(url)


def test_an_in_memory_duckdb_is_shared_not_reopened() -> None:
    source = ProfileSource("duckdb://")
    with pytest.raises(NotFound, match="does not exist"):
        source.table()
    source.close()


def test_duckdb_file_error_other_than_a_lock(tmp_path: Path) -> None:
    not_a_db = tmp_path / "broken.duckdb"
    not_a_db.write_text("this is not a database")
    with pytest.raises(ConfigError, match="cannot open the profile store"):
        ProfileSource(f"duckdb://{not_a_db}").table()
    assert duckdb.__version__  # the error above came from DuckDB itself


COUNT_WITHOUT_PANDAS = """
import sys
from segmentsync.profiles.source import ProfileSource
from segmentsync.segments.rules import parse
source = ProfileSource("duckdb://" + sys.argv[1])
rule = parse({"items": [{"column": "country", "operator": "eq", "value": "PL"}]})
members = source.members([rule], ["email", "total_spend"])
print(source.count(members), source.counts([rule])[0], source.preview(members, limit=3).num_rows)
print("pandas" in sys.modules)
"""


def test_counts_and_previews_leave_pandas_unloaded(db: Path) -> None:
    """Counting a segment or previewing it reads Arrow straight from DuckDB: Ibis's converters
    would import pandas (a quarter of a second and ~46 MB in every process that counts)."""
    done = subprocess.run(
        [sys.executable, "-c", COUNT_WITHOUT_PANDAS, str(db)], capture_output=True, text=True, check=True
    )
    counted, pandas_loaded = done.stdout.splitlines()
    count, counts, previewed = (int(word) for word in counted.split())
    assert count == counts > 0
    assert previewed == 3
    assert pandas_loaded == "False"


def test_warming_imports_the_backend_without_touching_the_file(tmp_path: Path) -> None:
    """``warm`` (a worker, before its first run) loads the Ibis backend and opens nothing: the
    file need not exist yet. In a process of its own, where nothing imported the backend before."""
    missing = tmp_path / "not-yet.duckdb"
    code = (
        "import sys\n"
        "from segmentsync.profiles.source import ProfileSource\n"
        "source = ProfileSource(sys.argv[1])\n"
        "assert 'ibis.backends.duckdb' not in sys.modules\n"
        "source.warm()\n"
        "assert 'ibis.backends.duckdb' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, f"duckdb:///{missing}"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert not missing.exists()
