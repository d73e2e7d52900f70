"""Signing in with email and password: constant-time checks, throttling, signing out.

The API (``POST /api/v1/session``) and the server-rendered sign-in page use the same functions
and the same cookie keys: ``sid`` (the server-side session, see :mod:`segmentsync.auth.sessions`)
and ``csrf`` (the CSRF token forms and unsafe API calls must send back).
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from segmentsync.auth import audit, sessions
from segmentsync.auth.models import AuditEntry, User
from segmentsync.auth.service import HASHER, password_matches
from segmentsync.errors import Forbidden, SegmentSyncError

log = logging.getLogger(__name__)

THROTTLE_LIMIT = 10  # failed sign-ins per email and IP address ...
ADDRESS_LIMIT = 30  # ... and per IP address, whatever the emails tried ...
THROTTLE_WINDOW = timedelta(minutes=15)  # ... within this window
SIGN_IN = "auth.sign_in"
SIGN_IN_FAILED = "auth.sign_in_failed"
SIGN_OUT = "auth.sign_out"
EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class TooManyAttempts(SegmentSyncError):
    status = 429
    default_code = "too_many_attempts"


@cache
def _dummy_hash() -> str:
    """A hash to verify against when there is no user, so that unknown emails take as long."""
    return HASHER.hash(secrets.token_urlsafe(16))


def _label(email: str) -> str:
    """The typed email as recorded; anything else (a password typed in the wrong box) is not kept."""
    email = email.strip().lower()
    return email[:254] if EMAIL_SHAPE.fullmatch(email) else "(not an email address)"


def check_throttle(*, session: Session, email: str, ip: str | None, now: datetime) -> None:
    """Refuse when this email and IP, or this IP whatever the email, failed too often recently.

    The failures are audit entries. For one email, failures before the last successful sign-in
    from the same place do not count; for the address, all do (one account's success must not
    reset the guessing of others' passwords from there).
    """
    since = now - THROTTLE_WINDOW
    from_address = sa.select(AuditEntry.at).where(
        AuditEntry.action == SIGN_IN_FAILED, AuditEntry.ip.is_not_distinct_from(ip), AuditEntry.at >= since
    )
    times = sorted(session.scalars(from_address.order_by(AuditEntry.at.desc()).limit(ADDRESS_LIMIT)))
    if len(times) >= ADDRESS_LIMIT:
        log.warning("sign-in throttled for every email from %s", ip)
        _refuse(times[0], now, "too many failed sign-ins from your address")
    same_place = (
        AuditEntry.object_type == "user",
        AuditEntry.object_label == _label(email),
        AuditEntry.ip.is_not_distinct_from(ip),
        AuditEntry.at >= since,
    )
    last_success = session.scalar(
        sa.select(sa.func.max(AuditEntry.at)).where(AuditEntry.action == SIGN_IN, *same_place)
    )
    failures = sa.select(AuditEntry.at).where(AuditEntry.action == SIGN_IN_FAILED, *same_place)
    if last_success is not None:
        failures = failures.where(AuditEntry.at > last_success)
    times = sorted(session.scalars(failures.order_by(AuditEntry.at.desc()).limit(THROTTLE_LIMIT)))
    if len(times) >= THROTTLE_LIMIT:
        log.warning("sign-in throttled for %s from %s", _label(email), ip)
        _refuse(times[0], now, "too many failed sign-ins for this email from your address")


def _refuse(oldest: datetime, now: datetime, message: str) -> None:
    """TooManyAttempts, saying when the oldest counted failure leaves the window."""
    wait = max(1, int((oldest + THROTTLE_WINDOW - now).total_seconds()) + 1)
    raise TooManyAttempts(
        f"{message}; try again in {wait // 60 + 1} minutes", details={"retry_after_seconds": wait}
    )


def authenticate(
    *, session: Session, email: str, password: str, ip: str | None, now: datetime
) -> User | None:
    """The user if the email and password match an account, else None (the failure is audited).

    Raises TooManyAttempts before checking anything when throttled, and Forbidden for a
    deactivated account (only once the password proved who is asking). The caller commits the
    audit entry even when it then refuses the sign-in.
    """
    check_throttle(session=session, email=email, ip=ip, now=now)
    user = session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None or user.password_hash is None:
        password_matches(_dummy_hash(), password)  # same work as a real check
        _failed(session, email=email, user=user, ip=ip, now=now)
        return None
    if not password_matches(user.password_hash, password):
        _failed(session, email=email, user=user, ip=ip, now=now)
        return None
    if not user.is_active:
        raise Forbidden("this account is deactivated; ask an admin to reactivate it", code="deactivated")
    if HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = HASHER.hash(password)
    user.last_login_at = now
    audit.record(
        session,
        actor=user,
        action=SIGN_IN,
        object_type="user",
        object_id=user.id,
        object_label=user.email,
        ip=ip,
        at=now,
    )
    return user


def _failed(session: Session, *, email: str, user: User | None, ip: str | None, now: datetime) -> None:
    log.info("sign-in failed for %s from %s", _label(email), ip)
    audit.record(
        session,
        actor=None,
        actor_label=_label(email),
        action=SIGN_IN_FAILED,
        object_type="user",
        object_id=user.id if user else None,
        object_label=_label(email),
        ip=ip,
        at=now,
    )


def cookie_values(sid: str) -> dict[str, Any]:
    """What a browser's cookie holds after signing in: the session's id and a fresh CSRF token."""
    return {sessions.SID_KEY: sid, "csrf": secrets.token_urlsafe(32)}


def sign_out(*, session: Session, user: User, session_id: int, ip: str | None, now: datetime) -> None:
    """End this browser's session: its cookie, even copied, no longer signs anyone in."""
    sessions.end(session=session, user_id=user.id, session_id=session_id)
    audit.record(
        session,
        actor=user,
        action=SIGN_OUT,
        object_type="user",
        object_id=user.id,
        object_label=user.email,
        ip=ip,
        at=now,
    )
