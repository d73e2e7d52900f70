"""row_counts: the kept row counts of runs and audit_log, added to by triggers (segmentsync.counts)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 23:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTED = ("runs", "audit_log")

# PostgreSQL: one row per statement, its rows' number (transition tables); a TRUNCATE forgets them.
POSTGRES_FUNCTION = """
CREATE FUNCTION segmentsync_count_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO row_counts (table_name, delta)
            SELECT TG_TABLE_NAME, count(*) FROM new_rows HAVING count(*) > 0;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO row_counts (table_name, delta)
            SELECT TG_TABLE_NAME, -count(*) FROM old_rows HAVING count(*) > 0;
    ELSE
        DELETE FROM row_counts WHERE table_name = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END
$$
"""
POSTGRES_TRIGGERS = (
    "CREATE TRIGGER {t}_counted_insert AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION segmentsync_count_rows()",
    "CREATE TRIGGER {t}_counted_delete AFTER DELETE ON {t} REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION segmentsync_count_rows()",
    "CREATE TRIGGER {t}_counted_truncate AFTER TRUNCATE ON {t} "
    "FOR EACH STATEMENT EXECUTE FUNCTION segmentsync_count_rows()",
)
# SQLite: one row per row (no statement triggers).
SQLITE_TRIGGERS = (
    "CREATE TRIGGER {t}_counted_insert AFTER INSERT ON {t} "
    "BEGIN INSERT INTO row_counts (table_name, delta) VALUES ('{t}', 1); END",
    "CREATE TRIGGER {t}_counted_delete AFTER DELETE ON {t} "
    "BEGIN INSERT INTO row_counts (table_name, delta) VALUES ('{t}', -1); END",
)


def upgrade() -> None:
    op.create_table(
        "row_counts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("table_name", sa.String(length=40), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_row_counts")),
    )
    op.create_index(op.f("ix_row_counts_table_name"), "row_counts", ["table_name"], unique=False)
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(POSTGRES_FUNCTION)
    for table in COUNTED:  # the rows there already, then every change
        op.execute(f"INSERT INTO row_counts (table_name, delta) SELECT '{table}', count(*) FROM {table}")  # noqa: S608  # our own two names
        for trigger in POSTGRES_TRIGGERS if postgres else SQLITE_TRIGGERS:
            op.execute(trigger.format(t=table))


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in COUNTED:
        for kind in ("insert", "delete", "truncate") if postgres else ("insert", "delete"):
            op.execute(f"DROP TRIGGER {table}_counted_{kind}" + (f" ON {table}" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION segmentsync_count_rows()")
    op.drop_index(op.f("ix_row_counts_table_name"), table_name="row_counts")
    op.drop_table("row_counts")
