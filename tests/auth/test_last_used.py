"""When a token or a browser session was last used is noted by one request at a time: a request
that finds another one noting it goes on instead of waiting for that request's transaction to end
(PostgreSQL: 20 requests of one busy client queued up to 8 s behind each other once a minute);
the time is noted again once the row is free."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from people import Person
from segmentsync.auth import service, sessions
from segmentsync.auth.models import ApiToken, BrowserSession, User
from segmentsync.runtime import Runtime

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LIFETIMES = sessions.Lifetimes(idle=timedelta(days=1), absolute=timedelta(days=2))


def _token_user(token: str) -> Callable[[Session, datetime], User | None]:
    return lambda session, now: service.user_for_api_token(session=session, token=token, now=now)


def _browser_user(sid: str) -> Callable[[Session, datetime], User | None]:
    def use(session: Session, now: datetime) -> User | None:
        found = sessions.current(session=session, token=sid, now=now, lifetimes=LIFETIMES)
        return found[0] if found else None

    return use


@pytest.fixture(params=["api token", "browser session"])
def kind(request: pytest.FixtureRequest, runtime: Runtime, admin: Person) -> tuple[Callable[..., User | None], Callable[[Session], datetime | None]]:  # fmt: skip
    """(use it in a transaction at a time, the last use noted)."""
    with runtime.sessions() as session, session.begin():
        if request.param == "api token":
            session.execute(sa.update(ApiToken).values(last_used_at=None))
            use, column = _token_user(admin.token), ApiToken.last_used_at
        else:
            user = session.get(User, admin.id)
            assert user is not None
            _row, sid = sessions.start(
                session=session, user=user, ip=None, user_agent="t", now=T0, lifetimes=LIFETIMES
            )
            use, column = _browser_user(sid), BrowserSession.last_seen_at
    return use, lambda session: session.scalar(sa.select(sa.func.max(column)))


def test_a_request_goes_on_while_another_notes_the_same_use(runtime: Runtime, kind: Any) -> None:
    use, noted = kind
    first = runtime.sessions()
    first.begin()
    try:
        assert use(first, T0 + timedelta(minutes=5)) is not None  # notes it: holds the row
        first.flush()
        with runtime.sessions() as second, second.begin():
            if second.get_bind().dialect.name == "postgresql":  # waiting for the row would fail here
                second.execute(sa.text("SET LOCAL lock_timeout = 1"))
                assert use(second, T0 + timedelta(minutes=6)) is not None
        first.commit()
    finally:
        first.close()
    with runtime.sessions() as session:
        assert noted(session) == T0 + timedelta(minutes=5)
    with runtime.sessions() as session, session.begin():  # free again: noted
        assert use(session, T0 + timedelta(minutes=9)) is not None
    with runtime.sessions() as session:
        assert noted(session) == T0 + timedelta(minutes=9)
