"""Row counts of the long lists kept by the store, so that a page's ``total`` is not a count of
73,000 runs or 100,000 audit entries on every request (≈ 5 ms of PostgreSQL's CPU each).

Triggers (migration 0012) add a row to ``row_counts`` for every change of a counted table: on
PostgreSQL one per statement (its inserted or deleted rows' number), on SQLite one per row. A
table's count is the sum of its rows. Nothing is ever updated in place, so writers never wait
for each other on a counter (a counter row updated by every insert would queue every writer of
the table behind the longest open transaction, and two tables' counters could deadlock).
:func:`compact` folds a table's rows into one; the scheduler does it on every tick.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from segmentsync.db import Base

COUNTED = ("runs", "audit_log")  # the tables with triggers (migration 0012)


class RowCount(Base):
    __tablename__ = "row_counts"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)
    table_name: Mapped[str] = mapped_column(sa.String(40), index=True)
    delta: Mapped[int] = mapped_column(sa.BigInteger())


def whole_table(query: sa.Select[object]) -> str | None:
    """The counted table ``query`` lists every row of (no filter, no join, no grouping), or None."""
    if query.whereclause is not None:
        return None
    # not get_final_froms(): it compiles the statement (≈ 0.9 ms of CPU, a tenth of the request);
    # the tables of the columns, and no FROM or join of its own, say the same for a plain select.
    # No public reader of the clauses below.
    if (
        query._from_obj
        or query._setup_joins
        or query._group_by_clauses
        or query._having_criteria
        or query._distinct
    ):
        return None
    froms = query.columns_clause_froms
    if len(froms) != 1 or not isinstance(froms[0], sa.Table):
        return None
    return froms[0].name if froms[0].name in COUNTED else None


def total(session: Session, table: str) -> int:
    """The number of rows of a counted table, from its kept count."""
    found = session.scalar(sa.select(sa.func.sum(RowCount.delta)).where(RowCount.table_name == table))
    return int(found or 0)


def compact(session: Session, table: str) -> None:
    """Fold ``table``'s count rows into one. The rows deleted are exactly those summed (RETURNING);
    on PostgreSQL rows another compaction holds are skipped, not waited for."""
    if not session.get_bind().dialect.delete_returning:  # an SQLite before 3.35: the rows just add up
        return
    mine = RowCount.table_name == table
    if (session.scalar(sa.select(sa.func.count()).select_from(RowCount).where(mine)) or 0) < 2:
        return
    held = sa.select(RowCount.id).where(mine).with_for_update(skip_locked=True)
    deltas = session.scalars(sa.delete(RowCount).where(RowCount.id.in_(held)).returning(RowCount.delta)).all()
    if sum(deltas):
        session.add(RowCount(table_name=table, delta=sum(deltas)))


def compact_all(session: Session) -> None:
    for table in COUNTED:
        compact(session, table)
