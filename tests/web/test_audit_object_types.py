"""The audit page's object-type filter lists the log's object types — found by a loose index
scan, they are exactly what ``SELECT DISTINCT`` finds, in its order, on both stores."""

from __future__ import annotations

import sqlalchemy as sa

from segmentsync.auth.models import AuditEntry
from segmentsync.db import transaction
from segmentsync.runtime import Runtime
from segmentsync.web.views import audit


def _both(runtime: Runtime) -> tuple[list[str], list[str]]:
    with runtime.sessions() as session:
        found = [str(kind) for kind in session.scalars(audit._OBJECT_TYPES)]
        distinct = session.scalars(
            sa.select(AuditEntry.object_type).distinct().order_by(AuditEntry.object_type)
        )
        return found, list(distinct)


def test_the_object_types_are_the_distinct_ones(runtime: Runtime) -> None:
    with runtime.sessions() as session:
        session.execute(sa.delete(AuditEntry))
        session.commit()
    assert _both(runtime) == ([], [])
    kinds = ["user", "export", "connection", "user", "segment", "Zeta", "export", "a", "run", "run", "élan"]
    with transaction(runtime.sessions) as session:
        session.add_all(
            AuditEntry(actor_label="system", action=f"{kind}.touch", object_type=kind, object_id=str(n))
            for n, kind in enumerate(kinds * 3)
        )
    found, distinct = _both(runtime)
    assert found == distinct
    assert sorted(found) == sorted(set(kinds))
