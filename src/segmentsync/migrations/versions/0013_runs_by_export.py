"""runs: one index on (export_id, id) instead of (export_id): an export's newest run and its runs
newest first by an index seek

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 23:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain index operations, not batch mode: on SQLite a batch could copy the table, and with it
# drop the counting triggers of 0012.
def upgrade() -> None:
    op.create_index("ix_runs_export_id_id", "runs", ["export_id", "id"], unique=False)
    op.drop_index("ix_runs_export_id", table_name="runs")


def downgrade() -> None:
    op.create_index("ix_runs_export_id", "runs", ["export_id"], unique=False)
    op.drop_index("ix_runs_export_id_id", table_name="runs")
