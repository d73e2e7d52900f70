"""Alembic environment: the engine comes from segmentsync.db.upgrade (config.attributes)."""

from __future__ import annotations

from alembic import context

from segmentsync.db import create_engine, import_models

metadata = import_models()
config = context.config
engine = config.attributes.get("engine")
if engine is None:  # `alembic` run by hand: take the URL from alembic's -x url=...
    engine = create_engine(context.get_x_argument(as_dictionary=True)["url"])

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs table copies for ALTER
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
