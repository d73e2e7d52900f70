"""The metadata store's schema: migrations give exactly the models' schema, whether a database is
created fresh or upgraded from any earlier revision, on SQLite and PostgreSQL; start-up migrates."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from segmentsync.db import SCHEMA_HEAD, alembic_config, at_head, create_engine, import_models, upgrade
from segmentsync.runtime import Runtime
from segmentsync.settings import get_settings

EmptyDatabase = Callable[[str], str]


@pytest.fixture
def empty_database(store_url: str, tmp_path: Path) -> Iterator[EmptyDatabase]:
    """Makes empty databases on the same server as ``store_url`` (SQLite files or PostgreSQL)."""
    made: list[str] = []
    server = store_url.rsplit("/", 1)[0]
    admin = (
        None
        if store_url.startswith("sqlite")
        else create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    )

    def make(name: str) -> str:
        if admin is None:
            return f"sqlite:///{tmp_path / name}.db"
        database = (
            f"segmentsync_migrations_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}_{name}"
        )
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
        made.append(database)
        return f"{server}/{database}"

    yield make
    if admin is not None:
        with admin.connect() as conn:
            for database in made:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def schema(url: str) -> dict[str, Any]:
    """Everything about the tables that matters to the application, as comparable data."""
    engine = create_engine(url)
    inspector = sa.inspect(engine)
    tables: dict[str, Any] = {}
    for name in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        tables[name] = {
            "columns": [
                (c["name"], str(c["type"].compile(dialect=engine.dialect)), c["nullable"])
                for c in inspector.get_columns(name)
            ],
            "primary key": inspector.get_pk_constraint(name)["constrained_columns"],
            "foreign keys": sorted(
                (
                    fk["name"],
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    fk["options"].get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(name)
            ),
            "indexes": sorted(
                (
                    i["name"],
                    tuple(i["column_names"]),
                    bool(i["unique"]),
                    _options(i.get("dialect_options", {})),
                )
                for i in inspector.get_indexes(name)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(name)
            ),
        }
    engine.dispose()
    return tables


def _options(options: dict[str, Any]) -> str:
    """Dialect options (partial indexes' WHERE) as text: clause objects differ by identity only."""
    return repr(sorted((key, str(value)) for key, value in options.items()))


def revisions(url: str) -> list[str]:
    """Every migration revision, oldest first."""
    engine = create_engine(url)
    script = ScriptDirectory.from_config(alembic_config(engine))
    engine.dispose()
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


def migrate(url: str, *steps: tuple[str, str]) -> None:
    engine = create_engine(url)
    config = alembic_config(engine)
    for direction, target in steps:
        getattr(command, direction)(config, target)
    engine.dispose()


def test_migrated_schema_matches_the_models(store_url: str) -> None:
    engine = create_engine(store_url)
    upgrade(engine)  # a second upgrade of a migrated store changes nothing
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), import_models()
        )
    engine.dispose()
    assert diff == []


def test_created_and_migrated_databases_have_the_same_schema(empty_database: EmptyDatabase) -> None:
    created, migrated = empty_database("created"), empty_database("migrated")
    engine = create_engine(created)
    import_models().create_all(engine)
    engine.dispose()
    migrate(migrated, ("upgrade", "head"))
    expected = schema(migrated)
    assert "users" in expected
    assert schema(created) == expected


def test_upgrading_from_every_revision_gives_the_same_schema(empty_database: EmptyDatabase) -> None:
    fresh = empty_database("fresh")
    migrate(fresh, ("upgrade", "head"))
    expected = schema(fresh)
    for number, revision in enumerate(revisions(fresh)):
        url = empty_database(f"from_{number}")
        migrate(url, ("upgrade", revision), ("upgrade", "head"))
        assert schema(url) == expected, f"upgrading from {revision} differs"


def test_downgrading_to_nothing_and_back(empty_database: EmptyDatabase) -> None:
    url = empty_database("roundtrip")
    migrate(url, ("upgrade", "head"))
    expected = schema(url)
    migrate(url, ("downgrade", "base"))
    assert schema(url) == {}
    migrate(url, ("upgrade", "head"))
    assert schema(url) == expected


def test_start_up_migrates_the_store(empty_database: EmptyDatabase, tmp_path: Path) -> None:
    url = empty_database("startup")
    data_dir = tmp_path / "data"
    if url.startswith("sqlite"):  # the default: a SQLite file in the data dir
        url = f"sqlite:///{data_dir / 'segmentsync.db'}"
        runtime = Runtime.open(get_settings(data_dir=data_dir))
    else:
        runtime = Runtime.open(get_settings(data_dir=data_dir, database_url=url))
    with runtime.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        if runtime.engine.dialect.name == "sqlite":
            assert conn.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
    assert runtime.engine.url.render_as_string() == create_engine(url).url.render_as_string()
    runtime.close()
    assert version == revisions(url)[-1]


def test_processes_starting_at_once_migrate_once(store_url: str, empty_database: EmptyDatabase) -> None:
    """Eight processes open the same empty store at the same moment: one schema, no error.

    Before the whole upgrade was one transaction, a process reading the version between two of
    another's migrations (each committed on its own on SQLite) applied one again: with eight
    processes that failed 2 runs of 25 here, with four it failed once in CI.
    """
    import subprocess
    import sys

    url = empty_database("concurrent")
    code = (
        "import sys; from segmentsync.db import create_engine, upgrade; upgrade(create_engine(sys.argv[1]))"
    )
    processes = [subprocess.Popen([sys.executable, "-c", code, url]) for _ in range(8)]
    assert [process.wait(timeout=120) for process in processes] == [0] * 8
    assert schema(url) == schema(store_url)


def test_the_schema_head_named_in_the_code_is_alembics_head(store_url: str) -> None:
    """``db.SCHEMA_HEAD`` lets a process skip Alembic when the store is there already."""
    engine = create_engine(store_url)
    try:
        assert ScriptDirectory.from_config(alembic_config(engine)).get_current_head() == SCHEMA_HEAD
    finally:
        engine.dispose()


def test_a_store_at_the_head_is_recognised_and_an_older_or_new_one_is_not(
    empty_database: EmptyDatabase,
) -> None:
    url = empty_database("head_check")
    engine = create_engine(url)
    try:
        assert not at_head(engine)  # a new database: no version table
        command.upgrade(alembic_config(engine), "0002")
        assert not at_head(engine)
        upgrade(engine)
        assert at_head(engine)
    finally:
        engine.dispose()
