"""The REST API over a real HTTP server (uvicorn, as ``segmentsync serve`` runs it): what an
answer reports is committed before the answer is sent."""

from __future__ import annotations

import httpx

from segmentsync.auth import service as auth_service
from segmentsync.auth.models import User
from segmentsync.db import transaction
from segmentsync.segments.models import Segment
from web.conftest import ADMIN, Live  # tests/ is on sys.path (rootdir)

EVERYONE = {"op": "and", "items": [{"column": "orders", "operator": "ge", "value": 0}]}


def test_what_a_write_answered_is_in_the_store_when_the_answer_arrives(live: Live) -> None:
    """Create through the API, then read the store at once (as a worker or another process
    would), thirty times. With the commit after the answer (FastAPI's default for a dependency
    with yield) the row was often not there yet: a benchmark starting a run saw it one time in two.
    (A read through the same server waits for SQLite's write lock, so it would not tell.)"""
    with transaction(live.runtime.sessions) as session:
        admin = session.query(User).filter_by(email=ADMIN).one()
        _, token = auth_service.create_api_token(
            session=session, user=admin, name="live", actor=None, now=live.runtime.clock()
        )
    with httpx.Client(base_url=f"{live.url}/api/v1", headers={"Authorization": f"Bearer {token}"}) as api:
        for number in range(30):
            created = api.post("/segments", json={"name": f"Everyone {number}", "rules": EVERYONE})
            assert created.status_code == 201, created.text
            with live.runtime.readers() as session:
                stored = session.get(Segment, created.json()["id"])
            assert stored is not None, f"segment {number} answered 201 but is not in the store yet"
