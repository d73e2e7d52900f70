"""Admin > Users: users, roles, deactivation and any user's API tokens (admins only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.orm import Session

from segmentsync.api.deps import RuntimeDep, SessionDep, client_ip, require, session_id
from segmentsync.api.deps import session_id as current_session
from segmentsync.api.pagination import Page, PageDep, PageParams, paginate
from segmentsync.auth import service, sessions
from segmentsync.auth.models import Role, User
from segmentsync.auth.policy import Action
from segmentsync.auth.schemas import (
    BrowserSessionOut,
    PasswordSet,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserCreated,
    UserOut,
    UserUpdate,
)
from segmentsync.runtime import Runtime

router = APIRouter(prefix="/users", tags=["users"])
Admin = Annotated[User, Depends(require(Action.USERS_MANAGE))]


def users_out(session: Session, users: Sequence[User]) -> list[UserOut]:
    """Users as the API shows them, with the connections each one is the export user of."""
    export_user_of = service.export_user_of(session=session, user_ids=[user.id for user in users])
    return [
        UserOut.model_validate(user).model_copy(update={"export_user_of": export_user_of[user.id]})
        for user in users
    ]


def user_out(session: Session, user: User) -> UserOut:
    return users_out(session, [user])[0]


def sessions_page(session: Session, runtime: Runtime, user_id: int, page: PageParams,
                  current: int | None = None) -> Page[BrowserSessionOut]:  # fmt: skip
    """A user's sessions that still sign in, most recently used first."""
    rows = sessions.of_user(
        session=session,
        user_id=user_id,
        now=runtime.clock(),
        lifetimes=sessions.Lifetimes.of(runtime.settings),
    )
    items = [
        BrowserSessionOut.model_validate(row).model_copy(update={"current": row.id == current})
        for row in rows[page.offset : page.offset + page.limit]
    ]
    return Page(items=items, total=len(rows), limit=page.limit, offset=page.offset)


@router.get("", summary="List users")
def list_users(
    session: SessionDep,
    admin: Admin,
    page: PageDep,
    role: Role | None = None,
    active: Annotated[bool | None, Query(description="true: active users only; false: deactivated")] = None,
    q: Annotated[str | None, Query(description="part of the email or name")] = None,
) -> Page[UserOut]:
    rows, total = paginate(session, service.user_query(role=role, active=active, search=q), page)
    return Page(items=users_out(session, rows), total=total, limit=page.limit, offset=page.offset)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a user")
def create_user(body: UserCreate, session: SessionDep, admin: Admin, request: Request) -> UserCreated:
    generated = service.generate_password() if body.password is None else None
    password = generated or (body.password.get_secret_value() if body.password else None)
    user = service.create_user(
        session=session,
        email=body.email,
        role=body.role,
        name=body.name,
        password=password,
        language=body.language,
        actor=admin,
        ip=client_ip(request),
    )
    return UserCreated(**user_out(session, user).model_dump(), generated_password=generated)


@router.get("/{user_id}", summary="Show a user")
def get_user(user_id: int, session: SessionDep, admin: Admin) -> UserOut:
    return user_out(session, service.get_user(session=session, user_id=user_id))


@router.patch("/{user_id}", summary="Change a user's name, language, role or active state")
def update_user(
    user_id: int, body: UserUpdate, session: SessionDep, admin: Admin, request: Request
) -> UserOut:
    user = service.get_user(session=session, user_id=user_id)
    ip, sent = client_ip(request), body.model_fields_set
    if "name" in sent or "language" in sent:
        service.update_profile(
            session=session,
            user=user,
            actor=admin,
            name=body.name,
            language=body.language,
            clear_language="language" in sent and body.language is None,
            ip=ip,
        )
    if body.role is not None:
        service.set_role(session=session, user=user, role=body.role, actor=admin, ip=ip)
    if body.is_active is True:
        service.reactivate(session=session, user=user, actor=admin, ip=ip)
    elif body.is_active is False:
        service.deactivate(session=session, user=user, actor=admin, ip=ip)
    return user_out(session, user)


@router.put(
    "/{user_id}/password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Set a user's password",
)
def set_password(
    user_id: int, body: PasswordSet, session: SessionDep, admin: Admin, request: Request
) -> None:
    user = service.get_user(session=session, user_id=user_id)
    service.set_password(
        session=session,
        user=user,
        new_password=body.new_password.get_secret_value(),
        actor=admin,
        ip=client_ip(request),
        keep_session=session_id(request) if user.id == admin.id else None,  # the user's sessions end
    )


@router.get("/{user_id}/tokens", summary="List a user's API tokens")
def list_tokens(
    user_id: int, session: SessionDep, admin: Admin, page: PageDep, include_revoked: bool = False
) -> Page[TokenOut]:
    user = service.get_user(session=session, user_id=user_id)
    rows, total = paginate(
        session, service.token_query(user_id=user.id, include_revoked=include_revoked), page
    )
    items = [TokenOut.model_validate(row) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/{user_id}/tokens", status_code=status.HTTP_201_CREATED, summary="Create an API token for a user"
)
def create_token(
    user_id: int, body: TokenCreate, session: SessionDep, admin: Admin, runtime: RuntimeDep, request: Request
) -> TokenCreated:
    user = service.get_user(session=session, user_id=user_id)
    row, token = service.create_api_token(
        session=session, user=user, name=body.name, actor=admin, now=runtime.clock(), ip=client_ip(request)
    )
    return TokenCreated(**TokenOut.model_validate(row).model_dump(), token=token)


@router.delete(
    "/{user_id}/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Revoke a user's API token",
)
def revoke_token(
    user_id: int, token_id: int, session: SessionDep, admin: Admin, runtime: RuntimeDep, request: Request
) -> None:
    token = service.get_api_token(session=session, token_id=token_id, user_id=user_id)
    service.revoke_api_token(
        session=session, token=token, actor=admin, now=runtime.clock(), ip=client_ip(request)
    )


@router.get("/{user_id}/sessions", summary="List the browsers signed in as a user")
def list_sessions(
    user_id: int, session: SessionDep, admin: Admin, runtime: RuntimeDep, page: PageDep, request: Request
) -> Page[BrowserSessionOut]:
    user = service.get_user(session=session, user_id=user_id)
    return sessions_page(session, runtime, user.id, page, current=session_id(request))


@router.delete(
    "/{user_id}/sessions",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="End every session of a user (sign them out everywhere)",
)
def end_sessions(user_id: int, session: SessionDep, admin: Admin, request: Request) -> None:
    user = service.get_user(session=session, user_id=user_id)
    service.end_sessions(session=session, user=user, actor=admin, ip=client_ip(request))
    if user.id == admin.id and session_id(request) is not None:
        request.session.clear()


@router.delete(
    "/{user_id}/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="End one session of a user",
)
def end_session(user_id: int, session_id: int, session: SessionDep, admin: Admin, request: Request) -> None:
    user = service.get_user(session=session, user_id=user_id)
    ended_own = session_id == current_session(request)
    service.end_sessions(
        session=session, user=user, actor=admin, session_id=session_id, ip=client_ip(request)
    )
    if ended_own:
        request.session.clear()
