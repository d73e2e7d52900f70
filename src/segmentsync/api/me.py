"""Signing in and out, and your own account: profile, password, API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from segmentsync.api.deps import RuntimeDep, SessionDep, bearer_token, client_ip, require, session_id
from segmentsync.api.deps import session_id as current_session
from segmentsync.api.errors import ErrorBody
from segmentsync.api.pagination import Page, PageDep, paginate
from segmentsync.api.users import sessions_page, user_out
from segmentsync.auth import service, sessions, signin
from segmentsync.auth.models import User
from segmentsync.auth.policy import POLICY, Action
from segmentsync.auth.schemas import (
    BrowserSessionOut,
    MeOut,
    PasswordChange,
    ProfileUpdate,
    SessionOut,
    SignIn,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserOut,
)
from segmentsync.db import transaction
from segmentsync.errors import Unauthenticated

router = APIRouter(tags=["me"])
Me = Annotated[User, Depends(require(Action.OWN_ACCOUNT))]


@router.post(
    "/session",
    summary="Sign in (sets the session cookie)",
    responses={429: {"model": ErrorBody, "description": "Too many failed sign-ins from this address"}},
)
def sign_in(body: SignIn, request: Request, runtime: RuntimeDep) -> SessionOut:
    """The one route open to everyone. Failed attempts are audited and throttled per email and IP."""
    # Its own transaction: a failed attempt must be recorded although the request is refused.
    with transaction(runtime.sessions) as session:
        user = signin.authenticate(
            session=session,
            email=body.email,
            password=body.password.get_secret_value(),
            ip=client_ip(request),
            now=runtime.clock(),
        )
        out = user_out(session, user) if user is not None else None
        if user is not None:
            _, sid = sessions.start(
                session=session, user=user, ip=client_ip(request), user_agent=request.headers.get("user-agent", ""),
                now=runtime.clock(), lifetimes=sessions.Lifetimes.of(runtime.settings),
            )  # fmt: skip
    if user is None or out is None:
        raise Unauthenticated("wrong email or password", code="wrong_credentials", field="password")
    request.session.clear()  # a fresh session: nothing survives from before signing in
    request.session.update(signin.cookie_values(sid))
    return SessionOut(user=out, csrf_token=request.session["csrf"])


@router.delete(
    "/session", summary="Sign out", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
def sign_out(me: Me, session: SessionDep, runtime: RuntimeDep, request: Request) -> None:
    """Ends this browser's session on the server: its cookie, even copied, signs nobody in."""
    browser = session_id(request)
    if browser is not None:
        signin.sign_out(
            session=session, user=me, session_id=browser, ip=client_ip(request), now=runtime.clock()
        )
    request.session.clear()


@router.get("/me", summary="Who am I: user, permissions, CSRF token")
def me(me: Me, session: SessionDep, request: Request) -> MeOut:
    by_token = bearer_token(request) is not None
    return MeOut(
        user=user_out(session, me),
        authenticated_by="token" if by_token else "session",
        csrf_token=None if by_token else request.session.get("csrf"),
        permissions=[action.value for action, roles in POLICY.items() if me.role in roles],
    )


@router.patch("/me", summary="Change your name or UI language")
def update_me(body: ProfileUpdate, me: Me, session: SessionDep, request: Request) -> UserOut:
    sent = body.model_fields_set
    service.update_profile(
        session=session,
        user=me,
        actor=me,
        name=body.name,
        language=body.language,
        clear_language="language" in sent and body.language is None,
        ip=client_ip(request),
    )
    return user_out(session, me)


@router.put(
    "/me/password",
    summary="Change your password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def change_password(body: PasswordChange, me: Me, session: SessionDep, request: Request) -> None:
    """Your other browser sessions end; this one (if you are signed in with it) stays."""
    service.change_password(
        session=session,
        user=me,
        current_password=body.current_password.get_secret_value(),
        new_password=body.new_password.get_secret_value(),
        ip=client_ip(request),
        keep_session=session_id(request),
    )


@router.get("/me/sessions", summary="List the browsers signed in as you")
def list_sessions(
    me: Me, session: SessionDep, runtime: RuntimeDep, page: PageDep, request: Request
) -> Page[BrowserSessionOut]:
    return sessions_page(session, runtime, me.id, page, current=session_id(request))


@router.delete(
    "/me/sessions",
    summary="Sign out everywhere: end every session of yours, this browser's too",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def end_all_sessions(me: Me, session: SessionDep, request: Request) -> None:
    service.end_sessions(session=session, user=me, actor=me, ip=client_ip(request))
    if session_id(request) is not None:
        request.session.clear()


@router.delete(
    "/me/sessions/{session_id}",
    summary="End one of your sessions (sign that browser out)",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def end_session(session_id: int, me: Me, session: SessionDep, request: Request) -> None:
    ended_own = session_id == current_session(request)
    service.end_sessions(session=session, user=me, actor=me, session_id=session_id, ip=client_ip(request))
    if ended_own:
        request.session.clear()


@router.get("/me/tokens", summary="List your API tokens")
def list_tokens(me: Me, session: SessionDep, page: PageDep, include_revoked: bool = False) -> Page[TokenOut]:
    rows, total = paginate(session, service.token_query(user_id=me.id, include_revoked=include_revoked), page)
    items = [TokenOut.model_validate(row) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/me/tokens", status_code=status.HTTP_201_CREATED, summary="Create an API token (shown once)")
def create_token(
    body: TokenCreate, me: Me, session: SessionDep, runtime: RuntimeDep, request: Request
) -> TokenCreated:
    row, token = service.create_api_token(
        session=session, user=me, name=body.name, actor=me, now=runtime.clock(), ip=client_ip(request)
    )
    return TokenCreated(**TokenOut.model_validate(row).model_dump(), token=token)


@router.delete(
    "/me/tokens/{token_id}",
    summary="Revoke one of your API tokens",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def revoke_token(token_id: int, me: Me, session: SessionDep, runtime: RuntimeDep, request: Request) -> None:
    token = service.get_api_token(session=session, token_id=token_id, user_id=me.id)
    service.revoke_api_token(
        session=session, token=token, actor=me, now=runtime.clock(), ip=client_ip(request)
    )
