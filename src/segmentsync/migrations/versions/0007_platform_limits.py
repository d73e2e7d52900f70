"""platform limits shared by every process (Constant Contact's rate and daily quota per application)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 16:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "platform_limits",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=30), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("spent_until", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_platform_limits")),
    )


def downgrade() -> None:
    op.drop_table("platform_limits")
