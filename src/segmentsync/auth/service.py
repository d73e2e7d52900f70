"""Users, roles and API tokens: every change is checked, audited and explicit.

Services take the session and the acting user (``actor``; None means the system or the command
line) and raise domain errors. Sign-in lives in :mod:`segmentsync.auth.signin`.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from confusable_homoglyphs import confusables
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from segmentsync.auth import audit, sessions
from segmentsync.auth.models import ApiToken, Role, User
from segmentsync.connections.models import Connection  # the connections domain owns the table
from segmentsync.db import contains
from segmentsync.errors import N_, Conflict, Invalid, NotFound

# argon2-cffi's default is RFC 9106's low-memory profile (argon2id, 64 MiB, t=3).
HASHER = PasswordHasher()
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # hashing is deliberately slow: refuse megabyte "passwords"
LANGUAGES = ("en", "pl", "lv", "ro", "fi")  # the UI's languages; None = the browser's choice
TOKEN_PREFIX = "ss_"  # noqa: S105  # a marker that makes our tokens recognisable, not a secret
TOKEN_SHOWN = 10  # characters of a token kept in clear to tell tokens apart in lists
# A token's last use is written at most this often: no write on every API call.
LAST_USED_GRANULARITY = timedelta(minutes=1)


# ---------------------------------------------------------------- validation and passwords


def normalize_email(email: str) -> str:
    """The sign-in name: a syntactically valid address, lower case (no DNS lookups)."""
    try:
        valid = validate_email(
            email.strip(), check_deliverability=False, globally_deliverable=False, test_environment=True
        )
    except EmailNotValidError as exc:
        raise Invalid("not a valid email address: %(exc)s", params={"exc": exc}, field="email") from exc
    return valid.normalized.lower()


def refuse_look_alikes(address: str) -> str:
    """Refuse an address that mixes scripts within its local part or a domain label.

    ``аdmin@example.com`` with a Cyrillic "а" looks like the admin's address in every list and
    audit entry. Each part may be in any one script (``пётр@пример.рф`` is fine); mixing Latin
    with Cyrillic or Greek inside one part is how look-alikes are made (Unicode TR39).
    """
    local, _, domain = address.rpartition("@")
    for part in (local, *domain.split(".")):
        if confusables.is_mixed_script(part):
            raise Invalid(
                "the email address %(address)s mixes alphabets in %(part)s (a look-alike of another address?); type it in one alphabet",
                params={"address": repr(address), "part": repr(part)},
                code="look_alike_email",
                field="email",
            )
    return address


def hash_password(password: str, *, field: str = "password") -> str:
    if len(password) < MIN_PASSWORD:
        raise Invalid(
            "the password must have at least %(min)s characters",
            params={"min": MIN_PASSWORD},
            field=field,
        )
    if len(password) > MAX_PASSWORD:
        raise Invalid(
            "the password must have at most %(max)s characters",
            params={"max": MAX_PASSWORD},
            field=field,
        )
    return HASHER.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    if not password_hash or len(password) > MAX_PASSWORD:
        return False
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A random password for a new user, shown once (16 url-safe characters, ~96 bits)."""
    return secrets.token_urlsafe(12)


def _check_language(language: str | None) -> str | None:
    if language is not None and language not in LANGUAGES:
        raise Invalid(
            "unknown language %(language)s; choose one of %(names)s",
            params={"language": repr(language), "names": ", ".join(LANGUAGES)},
            field="language",
        )
    return language


def snapshot(user: User) -> dict[str, Any]:
    """The audited view of a user (never the password hash)."""
    return {
        "email": user.email,
        "name": user.name,
        "role": user.role.value,
        "is_active": user.is_active,
        "language": user.language,
    }


# ---------------------------------------------------------------- users


def create_user(
    *,
    session: Session,
    email: str,
    role: Role,
    actor: User | None,
    name: str = "",
    password: str | None = None,
    language: str | None = None,
    ip: str | None = None,
) -> User:
    """Create a user. Without a password the user can use API tokens but not sign in yet."""
    address = refuse_look_alikes(normalize_email(email))
    if session.scalar(sa.select(User.id).where(User.email == address)) is not None:
        raise Conflict(
            "a user with the email %(address)s already exists",
            params={"address": address},
            code="email_taken",
            field="email",
        )
    user = User(
        email=address,
        name=name.strip(),
        role=role,
        password_hash=hash_password(password) if password is not None else None,
        is_active=True,
        language=_check_language(language),
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=user.id,
        object_label=user.email,
        after=snapshot(user),
        ip=ip,
    )
    return user


def get_user(*, session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no user with id %(user_id)s", params={"user_id": user_id})
    return user


def get_user_by_email(*, session: Session, email: str) -> User:
    address = email.strip().lower()
    user = session.scalar(sa.select(User).where(User.email == address))
    if user is None:
        raise NotFound("no user with the email %(address)s", params={"address": address}, field="email")
    return user


def user_query(
    *, role: Role | None = None, active: bool | None = None, search: str | None = None
) -> sa.Select[User]:
    """Users matching the filters, by email (for :func:`segmentsync.api.pagination.paginate`)."""
    query = sa.select(User).order_by(User.email)
    if role is not None:
        query = query.where(User.role == role)
    if active is not None:
        query = query.where(User.is_active.is_(active))
    if search:
        query = query.where(sa.or_(contains(User.email, search), contains(User.name, search)))
    return query


def _ensure_another_admin(session: Session, user: User, doing: str) -> None:
    """Refuse to leave the system without an active admin.

    The active admins' rows are locked (PostgreSQL) so that two admins demoting each other at
    the same time cannot both succeed; SQLite serialises writers already (BEGIN IMMEDIATE).
    """
    if user.role is not Role.ADMIN or not user.is_active:
        return
    admins = session.scalars(
        sa.select(User.id).where(User.role == Role.ADMIN, User.is_active.is_(True)).with_for_update()
    ).all()
    if [admin for admin in admins if admin != user.id]:
        return
    raise Conflict(
        "%(email)s is the last active admin and cannot be %(doing)s; make another user an admin first",
        params={"email": user.email, "doing": doing},
        code="last_admin",
    )


def _change(
    session: Session, user: User, *, action: str, actor: User | None, ip: str | None, **values: Any
) -> User:
    before = snapshot(user)
    for key, value in values.items():
        setattr(user, key, value)
    session.flush()
    after = snapshot(user)
    if after != before:
        audit.record(
            session,
            actor=actor,
            action=action,
            object_type="user",
            object_id=user.id,
            object_label=user.email,
            before=before,
            after=after,
            ip=ip,
        )
    return user


def set_role(*, session: Session, user: User, role: Role, actor: User | None, ip: str | None = None) -> User:
    """Change the role; the user's browser sessions end (they sign in again under the new role)."""
    if role is not Role.ADMIN:
        _ensure_another_admin(session, user, N_("demoted"))
    if role is not user.role:
        sessions.end(session=session, user_id=user.id)
    return _change(session, user, action="user.set_role", actor=actor, ip=ip, role=role)


def deactivate(*, session: Session, user: User, actor: User | None, ip: str | None = None) -> User:
    """Deactivate (never delete): sign-in, sessions and API tokens stop working at once."""
    _ensure_another_admin(session, user, N_("deactivated"))
    sessions.end(session=session, user_id=user.id)
    return _change(session, user, action="user.deactivate", actor=actor, ip=ip, is_active=False)


def reactivate(*, session: Session, user: User, actor: User | None, ip: str | None = None) -> User:
    return _change(session, user, action="user.reactivate", actor=actor, ip=ip, is_active=True)


def update_profile(
    *,
    session: Session,
    user: User,
    actor: User | None,
    name: str | None = None,
    language: str | None = None,
    clear_language: bool = False,
    ip: str | None = None,
) -> User:
    """Change the display name and/or the UI language (``clear_language``: follow the browser)."""
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = name.strip()
    if clear_language:
        values["language"] = None
    elif language is not None:
        values["language"] = _check_language(language)
    return _change(session, user, action="user.update", actor=actor, ip=ip, **values)


def set_password(
    *,
    session: Session,
    user: User,
    new_password: str,
    actor: User | None,
    ip: str | None = None,
    keep_session: int | None = None,
) -> None:
    """Set a user's password (an admin resetting it, or the command line).

    Every browser session of the user ends, but ``keep_session`` (the user's own, changing it).
    """
    user.password_hash = hash_password(new_password, field="new_password")
    sessions.end(session=session, user_id=user.id, keep=keep_session)
    audit.record(
        session,
        actor=actor,
        action="user.set_password",
        object_type="user",
        object_id=user.id,
        object_label=user.email,
        ip=ip,
    )


def change_password(
    *,
    session: Session,
    user: User,
    current_password: str,
    new_password: str,
    ip: str | None = None,
    keep_session: int | None = None,
) -> None:
    """A user changing their own password: the current one must be given; their other sessions end."""
    if user.password_hash is not None and not password_matches(user.password_hash, current_password):
        raise Invalid("the current password is wrong", code="wrong_password", field="current_password")
    set_password(
        session=session, user=user, new_password=new_password, actor=user, ip=ip, keep_session=keep_session
    )


def end_sessions(
    *,
    session: Session,
    user: User,
    actor: User | None,
    session_id: int | None = None,
    ip: str | None = None,
) -> int:
    """End one of ``user``'s browser sessions, or all of them ("sign out everywhere"); audited.

    Raises NotFound for a session id that is not one of the user's (or has ended already).
    """
    ended = sessions.end(session=session, user_id=user.id, session_id=session_id)
    if session_id is not None and not ended:
        raise NotFound("no session with id %(session_id)s", params={"session_id": session_id})
    if ended:
        audit.record(
            session,
            actor=actor,
            action="user.end_sessions",
            object_type="user",
            object_id=user.id,
            object_label=user.email,
            after={"sessions_ended": ended, "session_id": session_id},
            ip=ip,
        )
    return ended


def export_user_problem(user: User | None) -> str | None:
    """Why runs on a connection cannot run on behalf of this export user (None: they can).

    Exports run on behalf of the connection's export user, who must be an active admin
    (docs/users-and-roles.md, "Export users"); the run engine calls this before sending anything.
    """
    if user is None:
        return N_(
            "this connection has no export user; runs fail until another admin adds themselves as "
            "the connection's export user"
        )
    if not user.is_active:
        return N_(
            "the export user %(email)s is deactivated; runs on this connection fail until another "
            "admin adds themselves as the connection's export user"
        ) % {"email": user.email}
    if user.role is not Role.ADMIN:
        return N_(
            "the export user %(email)s is no longer an admin; runs on this connection fail until "
            "another admin adds themselves as the connection's export user"
        ) % {"email": user.email}
    return None


def export_user_of(*, session: Session, user_ids: list[int]) -> dict[int, list[str]]:
    """The names of the connections each user is the export user of (for the users list)."""
    rows = session.execute(
        sa.select(Connection.export_user_id, Connection.name)
        .where(Connection.export_user_id.in_(user_ids))
        .order_by(Connection.name)
    ).all()
    names: dict[int, list[str]] = {user_id: [] for user_id in user_ids}
    for user_id, name in rows:
        if user_id is not None:
            names[user_id].append(name)
    return names


# ---------------------------------------------------------------- API tokens


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(
    *, session: Session, user: User, name: str, actor: User | None, now: datetime, ip: str | None = None
) -> tuple[ApiToken, str]:
    """A new token for ``user``; the token itself is returned here only (it is stored hashed)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("a token needs a name of 1 to 100 characters", field="name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id, name=name, token_hash=_digest(token), prefix=token[:TOKEN_SHOWN], created_at=now
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="api_token.create",
        object_type="api_token",
        object_id=row.id,
        object_label=f"{user.email}: {name}",
        after={"name": name, "prefix": row.prefix, "user": user.email},
        ip=ip,
        at=now,
    )
    return row, token


def token_query(*, user_id: int, include_revoked: bool = False) -> sa.Select[ApiToken]:
    query = sa.select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
    return query if include_revoked else query.where(ApiToken.revoked_at.is_(None))


def get_api_token(*, session: Session, token_id: int, user_id: int | None = None) -> ApiToken:
    """A token by id; with ``user_id`` only that user's (so nobody can probe others' token ids)."""
    row = session.get(ApiToken, token_id)
    if row is None or (user_id is not None and row.user_id != user_id):
        raise NotFound("no API token with id %(token_id)s", params={"token_id": token_id})
    return row


def revoke_api_token(
    *, session: Session, token: ApiToken, actor: User | None, now: datetime, ip: str | None = None
) -> ApiToken:
    """Revoke (idempotent): the token stops working at once; the row stays for the record."""
    if token.revoked_at is None:
        token.revoked_at = now
        owner = session.get(User, token.user_id)
        audit.record(
            session,
            actor=actor,
            action="api_token.revoke",
            object_type="api_token",
            object_id=token.id,
            object_label=f"{owner.email if owner else token.user_id}: {token.name}",
            before={"name": token.name, "prefix": token.prefix},
            ip=ip,
            at=now,
        )
    return token


def user_for_api_token(*, session: Session, token: str, now: datetime) -> User | None:
    """The active user a bearer token belongs to, or None (unknown, revoked, deactivated)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    found = sessions.with_user(session, ApiToken, _digest(token))
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None or not user.is_active:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_GRANULARITY:
        sessions.touch(session, row, "last_used_at", now)  # never waits for another request's
    return user
