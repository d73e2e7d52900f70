"""Server-side browser sessions: what a session cookie signs in as, until it ends.

The cookie (signed by Starlette's session middleware) holds a random session id (``sid``) and
the CSRF token; the ``sessions`` table holds the SHA-256 of the id, the user, when it began and
was last used, and from where. A session ends — its row is deleted — when its user signs out,
signs out everywhere, changes their password (their other sessions), has their password or role
changed or is deactivated (all of their sessions), when an admin ends it, or when it has been
idle longer than ``SEGMENTSYNC_SESSION_IDLE_MINUTES`` or lived longer than
``SEGMENTSYNC_SESSION_MAX_HOURS``. A cookie copied before any of these no longer works.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from segmentsync.auth.models import ApiToken, BrowserSession, User
from segmentsync.settings import Settings

SID_KEY = "sid"  # the cookie's key for the session id
# The last use is written at most this often: no write on every request.
LAST_SEEN_GRANULARITY = timedelta(minutes=1)
MAX_TOKEN = 100  # longer "ids" are not ours: no hashing of megabytes


@dataclass(frozen=True)
class Lifetimes:
    idle: timedelta
    absolute: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Lifetimes:
        return cls(
            timedelta(minutes=settings.session_idle_minutes), timedelta(hours=settings.session_max_hours)
        )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _expired(lifetimes: Lifetimes, now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        BrowserSession.last_seen_at < now - lifetimes.idle,
        BrowserSession.created_at < now - lifetimes.absolute,
    )


def start(
    *, session: Session, user: User, ip: str | None, user_agent: str, now: datetime, lifetimes: Lifetimes
) -> tuple[BrowserSession, str]:
    """A new session for ``user``; the id for the cookie is returned here only."""
    session.execute(sa.delete(BrowserSession).where(_expired(lifetimes, now)))  # keep the table small
    token = secrets.token_urlsafe(32)
    row = BrowserSession(
        token_hash=_digest(token),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        ip=ip,
        user_agent=user_agent[:300],
    )
    session.add(row)
    session.flush()
    return row, token


def current(
    *, session: Session, token: object, now: datetime, lifetimes: Lifetimes
) -> tuple[User, BrowserSession] | None:
    """The active user and the session a cookie's id belongs to, or None (ended, expired, unknown)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        return None
    found = with_user(session, BrowserSession, _digest(token))
    if found is None:
        return None
    row, user = found
    if row.last_seen_at < now - lifetimes.idle or row.created_at < now - lifetimes.absolute:
        session.delete(row)
        return None
    if not user.is_active:
        return None
    if now - row.last_seen_at >= LAST_SEEN_GRANULARITY:
        touch(session, row, "last_seen_at", now)
    return user, row


Kept = TypeVar("Kept", BrowserSession, ApiToken)


def with_user(session: Session, model: type[Kept], digest: str) -> tuple[Kept, User] | None:
    """The session or token whose hash is ``digest`` and its user, in one statement (a statement
    less on every request than reading them one after the other)."""
    found = session.execute(
        sa.select(model, User).join(User, User.id == model.user_id).where(model.token_hash == digest)
    ).first()
    return None if found is None else (found[0], found[1])


def touch(session: Session, row: BrowserSession | ApiToken, column: str, now: datetime) -> None:
    """Note when a session or a token was last used — unless another request is noting it right
    now. Every request of a busy API client (or of a browser's tabs) finds the minute-old time
    at once; written in the request's transaction, the writes queued on the row's lock, each for
    the whole of the request before it (on PostgreSQL, 20 requests waited up to 8 s once a
    minute under load). ``FOR UPDATE SKIP LOCKED``: the one that holds the row writes, the
    others go on (SQLite has one writer at a time anyway: it writes as before)."""
    model = type(row)
    claim = sa.select(model.id).where(model.id == row.id)
    if session.get_bind().dialect.name == "postgresql":
        claim = claim.with_for_update(skip_locked=True)
    updated = session.execute(
        sa.update(model).where(model.id.in_(claim.scalar_subquery())).values({column: now}),
        execution_options={"synchronize_session": False},
    )
    if updated.rowcount:  # type: ignore[attr-defined]  # a DML result has rowcount
        set_committed_value(row, column, now)


def of_user(*, session: Session, user_id: int, now: datetime, lifetimes: Lifetimes) -> list[BrowserSession]:
    """The user's sessions that still sign in, the most recently used first."""
    query = (
        sa.select(BrowserSession)
        .where(BrowserSession.user_id == user_id, sa.not_(_expired(lifetimes, now)))
        .order_by(BrowserSession.last_seen_at.desc(), BrowserSession.id.desc())
    )
    return list(session.scalars(query))


def end(*, session: Session, user_id: int, session_id: int | None = None, keep: int | None = None) -> int:
    """End one of the user's sessions (``session_id``) or all of them but ``keep``; how many ended."""
    query = sa.delete(BrowserSession).where(BrowserSession.user_id == user_id)
    if session_id is not None:
        query = query.where(BrowserSession.id == session_id)
    if keep is not None:
        query = query.where(BrowserSession.id != keep)
    result = session.execute(query)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]  # a DML result has rowcount
