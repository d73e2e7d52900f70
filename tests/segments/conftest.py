"""The same profiles on every engine: DuckDB (a file), PostgreSQL (own database) and Spark (local).

``engine_source`` is parametrized over the three; each engine is set up once per test session
(Spark's first query takes seconds). PostgreSQL is skipped only where no server is reachable,
Spark only where pyspark or Java is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import ibis
import pytest
import sqlalchemy as sa

import dbt_project  # tests/ is on sys.path (rootdir)
from segmentsync.db import create_engine
from segmentsync.errors import NotFound
from segmentsync.profiles.source import ProfileSource

from .dataset import arrow_table

POSTGRES_SERVER = os.environ.get("SEGMENTSYNC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def duckdb_source(path: Path) -> ProfileSource:
    con = duckdb.connect(str(path))
    data = arrow_table()
    con.register("data", data)
    con.execute("CREATE OR REPLACE TABLE profiles AS SELECT * FROM data")
    con.close()
    return ProfileSource(f"duckdb://{path}", lock_wait=1)


@pytest.fixture(scope="session")
def duckdb_profiles(tmp_path_factory: pytest.TempPathFactory) -> ProfileSource:
    return duckdb_source(tmp_path_factory.mktemp("duckdb") / "profiles.duckdb")


@pytest.fixture(scope="session")
def postgres_profiles() -> Iterator[ProfileSource]:
    name = f"segmentsync_profiles_test_{_worker()}_{os.getpid()}"
    try:
        admin = create_engine(f"{POSTGRES_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_SERVER}: {exc.__class__.__name__}")
    url = f"{POSTGRES_SERVER}/{name}"
    con = ibis.connect("postgres://" + url.split("://", 1)[1])
    con.create_table("profiles", arrow_table())
    con.disconnect()
    source = ProfileSource(url)
    yield source
    source.close()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def spark_profiles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProfileSource]:
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark is not installed (scripts/bootstrap dev,spark)")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Java is not installed (Spark needs it)")
    from pyspark.sql import SparkSession

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    options = {
        "spark.master": "local[1]",
        "spark.driver.memory": "512m",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "1",
    }
    url = f"pyspark://{warehouse}?" + "&".join(f"{k}={v}" for k, v in options.items())
    source = ProfileSource(url)
    with pytest.raises(NotFound):  # the first use builds the Spark session from the URL
        source.table()
    session = SparkSession.builder.getOrCreate()  # that same session
    session.sparkContext.setLogLevel("ERROR")
    # Spark 4 takes Arrow directly (Ibis's create_table goes through pandas, which drops NULL decimals)
    session.createDataFrame(arrow_table()).write.mode("overwrite").saveAsTable("profiles")
    assert session.conf.get("spark.sql.warehouse.dir").endswith(str(warehouse))  # the URL's path
    yield source
    session.stop()


@pytest.fixture(
    scope="session",
    params=[
        "duckdb",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("spark", marks=pytest.mark.spark),
    ],
)
def engine_source(request: pytest.FixtureRequest) -> ProfileSource:
    """The test profiles on DuckDB, PostgreSQL and Spark."""
    source: ProfileSource = request.getfixturevalue(f"{request.param}_profiles")
    return source


@pytest.fixture(scope="session")
def dbt_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dbt's own manifest.json of a tiny project (``tests/dbt_project.py``), parsed once and kept."""
    command = dbt_project.dbt_command()
    if isinstance(command, str):
        pytest.skip(command)
    return dbt_project.cached_manifest(tmp_path_factory.mktemp("dbt-project"), command)
