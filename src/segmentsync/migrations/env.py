"""Alembic environment: the engine comes from segmentsync.db.upgrade (config.attributes)."""

from __future__ import annotations

from alembic import context

from segmentsync.db import create_engine, import_models

metadata = import_models()
config = context.config
engine = config.attributes.get("engine")
if engine is None:  # `alembic` run by hand: take the URL from alembic's -x url=...
    engine = create_engine(context.get_x_argument(as_dictionary=True)["url"])

# One transaction for the whole upgrade, begun before Alembic reads the current version. Alembic
# would otherwise commit each migration on its own on SQLite (no "transactional DDL" there), and
# a process starting at the same moment could read version 0002 while another was applying 0003,
# then apply 0003 again. On SQLite the transaction begins IMMEDIATE (segmentsync.db), so processes
# wait for each other's whole upgrade; on PostgreSQL the advisory lock in db.upgrade does it.
with engine.connect() as connection, connection.begin():
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs table copies for ALTER
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
