"""Idempotency keys of run triggers: the same ``Idempotency-Key`` within 24 hours answers the same
run, never a second one (an orchestrator that retries a trigger after a timeout must not start
two runs).

A key belongs to the user who sent it (two users' keys never collide) and remembers what it was
sent with: the same key with another export or other options is refused (422), as Stripe and
the IETF draft (draft-ietf-httpapi-idempotency-key-header) do. The key is stored in the
transaction that queues the run, before the run: a second request with the same key waits on
the key's unique index until the first commits, then finds its run.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from segmentsync.db import Base, UTCDateTime
from segmentsync.errors import Invalid

KEPT = timedelta(hours=24)
MAX_LENGTH = 200
HEADER = "Idempotency-Key"


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(MAX_LENGTH))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))  # what the request asked for
    run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_LENGTH or not all("!" <= char <= "~" for char in key):
        raise Invalid(
            f"{HEADER} is 1 to {MAX_LENGTH} visible ASCII characters (e.g. a UUID)",
            code="bad_idempotency_key",
            field=HEADER,
        )
    return key


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def find(session: Session, *, user_id: int, key: str, now: datetime) -> IdempotencyKey | None:
    """The key's record if it was used in the last 24 hours (older ones are forgotten here)."""
    session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEPT))
    return session.scalar(
        sa.select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    )


def claim(session: Session, *, user_id: int, key: str, print_: str, now: datetime) -> IdempotencyKey | None:
    """Record the key before the run is queued; returns the record another request made first
    (then the caller answers that one's run), or None when this request owns the key."""
    record = IdempotencyKey(user_id=user_id, key=key, fingerprint=print_, created_at=now)
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except sa.exc.IntegrityError:
        return find(session, user_id=user_id, key=key, now=now)
    return None


def same_request(record: IdempotencyKey, print_: str) -> None:
    if record.fingerprint != print_:
        raise Invalid(
            f"this {HEADER} was used in the last 24 hours for another request (another export or "
            "other options); use a new key for a new request",
            code="idempotency_key_reused",
            field=HEADER,
        )


def remember_run(session: Session, *, user_id: int, key: str, run_id: int) -> None:
    session.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(run_id=run_id)
    )
