"""no foreign keys on the per-member tables: run_members.run_id, delivered.export_id

PostgreSQL checks a foreign key with a trigger per inserted row: for the thousand rows a
checkpoint writes into each of these tables, that doubled its cost. Runs are never deleted
(their rows are pruned by run); removing an export deletes its delivered rows itself.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 23:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, constraint, column, referred table) — the names follow segmentsync.db.NAMING
KEYS = (
    ("run_members", "fk_run_members_run_id_runs", "run_id", "runs"),
    ("delivered", "fk_delivered_export_id_exports", "export_id", "exports"),
)


def upgrade() -> None:
    for table, name, _, _ in KEYS:
        with op.batch_alter_table(table) as batch:  # SQLite: the table is copied without the key
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    for table, name, column, referred in KEYS:
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(name, referred, [column], ["id"], ondelete="CASCADE")
