"""segments as SQL queries and dbt models: segments.kind/sql/dbt_model (rules only for kind rule),
and segment_options (the dbt manifest, whether only admins may write SQL segments)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 16:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import segmentsync.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=10), server_default="rule", nullable=False))
        batch.add_column(sa.Column("sql", sa.Text(), nullable=True))
        batch.add_column(sa.Column("dbt_model", sa.String(length=300), nullable=True))
        batch.alter_column("rules", existing_type=sa.JSON(), nullable=True)
    op.create_table(
        "segment_options",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dbt_manifest", sa.Text(), nullable=True),
        sa.Column("sql_admins_only", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("updated_at", segmentsync.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_options")),
    )


def downgrade() -> None:
    op.drop_table("segment_options")
    op.execute("DELETE FROM segments WHERE kind <> 'rule'")
    with op.batch_alter_table("segments") as batch:
        batch.alter_column("rules", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("dbt_model")
        batch.drop_column("sql")
        batch.drop_column("kind")
