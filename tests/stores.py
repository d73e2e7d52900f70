"""The test stores' shared facts, importable by any test module (``conftest`` is not: pytest
registers each folder's conftest under that one name, so ``from conftest import`` finds whichever
conftest was loaded last)."""

from __future__ import annotations

import os

import sqlalchemy as sa

from segmentsync.db import create_engine, import_models

POSTGRES_SERVER = os.environ.get("SEGMENTSYNC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def truncate_postgres(url: str) -> None:
    tables = [table.name for table in import_models().sorted_tables]
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    engine.dispose()
