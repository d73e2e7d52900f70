"""The audit log, newest first, with filters (admins only)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import Response

from segmentsync.api.pagination import PageParams, paginate
from segmentsync.auth import audit
from segmentsync.auth.models import AuditEntry
from segmentsync.auth.policy import Action
from segmentsync.web.page import Page, page_for
from segmentsync.web.routing import web_router

router = web_router()
Auditor = Annotated[Page, page_for(Action.AUDIT_VIEW)]
PER_PAGE = 100


def _day(value: str, *, end: bool = False) -> datetime | None:
    """A day typed in the filter (YYYY-MM-DD), as the UTC moment it starts (or the next day's)."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start + timedelta(days=1) if end else start


@router.get("/audit")
def audit_log(
    page: Auditor, actor: str = "", object_type: str = "", action: str = "", since: str = "", until: str = "",
    offset: int = 0,
) -> Response:  # fmt: skip
    filters = {"actor": actor, "object_type": object_type, "action": action, "since": since, "until": until}
    query = audit.query(
        actor=actor or None, object_type=object_type or None, action=action or None,
        since=_day(since), until=_day(until, end=True),
    )  # fmt: skip
    params = PageParams(limit=PER_PAGE, offset=max(offset, 0))
    with page.transaction() as session:
        entries, total = paginate(session, query, params)
        object_types = list(
            session.scalars(sa.select(AuditEntry.object_type).distinct().order_by(AuditEntry.object_type))
        )
    base = "/audit?" + urlencode({k: v for k, v in filters.items() if v}) + "&"
    return page.render(
        "audit.html", title=page._("Audit log"), entries=entries, total=total, offset=params.offset,
        limit=PER_PAGE, filters=filters, object_types=object_types, base=base,
    )  # fmt: skip
