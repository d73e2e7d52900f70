"""an index of a run's rows by their rarer outcomes: removed, rejected, skipped, invalid

A run's rows filtered by one of these outcomes (the run page's filter, GET /runs/{id}/rows
?outcome=rejected) were found by reading every row of the run: a second for a million rows. The
index is partial — only rows with one of these outcomes enter it — so the rows sent as planned
(new, updated: nearly all of them) cost nothing more to write; those are found by the primary key
(they fill the first stretch of seq).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 13:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RARE = sa.text("outcome IN ('removed', 'rejected', 'skipped', 'invalid')")


def upgrade() -> None:
    op.create_index(
        "ix_run_members_rare_outcome",
        "run_members",
        ["run_id", "outcome", "seq"],
        sqlite_where=RARE,
        postgresql_where=RARE,
    )


def downgrade() -> None:
    op.drop_index("ix_run_members_rare_outcome", table_name="run_members")
