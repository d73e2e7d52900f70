"""The test stores' shared facts, importable by any test module (``conftest`` is not: pytest
registers each folder's conftest under that one name, so ``from conftest import`` finds whichever
conftest was loaded last)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from segmentsync.db import create_engine, import_models, upgrade

POSTGRES_SERVER = os.environ.get("SEGMENTSYNC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def truncate_postgres(url: str) -> None:
    tables = [table.name for table in import_models().sorted_tables]
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    engine.dispose()


@contextmanager
def migrated_database(name: str, *, abandoned: tuple[str, ...] = ()) -> Iterator[str]:
    """A new, migrated PostgreSQL database ``name`` (its URL), dropped afterwards.

    ``abandoned``: prefixes of databases left by test processes that are gone (their names end in
    ``_<pid>``), dropped first.
    """
    admin = create_engine(f"{POSTGRES_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for prefix in abandoned:
            names = conn.execute(
                sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": f"{prefix}%"}
            )
            for (found,) in names.all():
                pid = found.rsplit("_", 1)[-1]
                if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{found}" WITH (FORCE)'))
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"{POSTGRES_SERVER}/{name}"
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
