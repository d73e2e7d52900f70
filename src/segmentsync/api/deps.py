"""Dependencies every route uses: the runtime, a session per request, the current user, the policy.

Authentication: ``Authorization: Bearer <API token>`` for scripts, or the session cookie of a
signed-in browser (a server-side session: :mod:`segmentsync.auth.sessions`). A request authenticated by cookie that changes something must carry the
session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from segmentsync.auth import service as auth_service
from segmentsync.auth import sessions
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action, check
from segmentsync.errors import Forbidden, Unauthenticated
from segmentsync.runtime import Runtime

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_runtime(request: Request) -> Runtime:
    """Async, as the dependencies below that touch no store: a sync one is a hop to a worker
    thread and back on every request (about 0.1-0.3 ms of CPU each under load)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_session(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on error."""
    with runtime.sessions() as session, session.begin():
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# scope="function": committed before the answer is sent. FastAPI's default for a dependency with
# yield ends it after the response has gone out: a client could read before the commit (a run it
# had just started: 404), and a commit that failed would follow a 2xx answer.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def sent_csrf(request: Request) -> str | None:
    """The CSRF token a change carries: the ``X-CSRF-Token`` header or the form field ``csrf_token``.

    Async only to read a posted form. No database work here: on the event loop it would block
    every request while it waits for a pooled connection (the sync dependencies run in threads).
    """
    if request.method in SAFE_METHODS:
        return None
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    return sent


def _check_csrf(request: Request, sent: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not sent or not hmac.compare_digest(str(expected), sent):
        raise Forbidden(
            "the form's security token is missing or wrong; reload the page and try again", code="csrf"
        )


def current_user(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    csrf: Annotated[str | None, Depends(sent_csrf)],
) -> User:
    token = bearer_token(request)
    if token is not None:
        user = auth_service.user_for_api_token(session=session, token=token, now=runtime.clock())
        if user is None:
            raise Unauthenticated("the API token is unknown, revoked or belongs to a deactivated user")
        return user
    sid = request.session.get(sessions.SID_KEY) if "session" in request.scope else None
    if sid is None:
        raise Unauthenticated("sign in, or send an API token as 'Authorization: Bearer <token>'")
    found = sessions.current(
        session=session, token=sid, now=runtime.clock(), lifetimes=sessions.Lifetimes.of(runtime.settings)
    )
    if found is None:
        request.session.clear()
        raise Unauthenticated(SESSION_ENDED, code="session_expired")
    user, browser = found
    request.state.session_id = browser.id
    if request.method not in SAFE_METHODS:
        _check_csrf(request, csrf)
    return user


CurrentUser = Annotated[User, Depends(current_user)]
SESSION_ENDED = (
    "your session has ended (signed out, idle or too old, or your password or role changed); sign in again"
)


def session_id(request: Request) -> int | None:
    """The id of the browser session of this request (None: an API token, or not signed in)."""
    value = getattr(request.state, "session_id", None)
    return value if isinstance(value, int) else None


class Require:
    """The dependency ``require(action)`` returns: the current user, if the policy allows ``action``.

    It keeps its action so that tests (and the docs) can read every route's policy from the app.
    """

    def __init__(self, action: Action) -> None:
        self.action = action

    async def __call__(self, user: CurrentUser) -> User:  # async: no store, no thread hop (see get_runtime)
        check(user, self.action)
        return user

    def __repr__(self) -> str:
        return f"require({self.action.value})"


def require(action: Action) -> Require:
    """Use as ``Depends(require(Action.X))`` on every route (or ``dependencies=[...]``)."""
    return Require(action)


def client_ip(request: Request) -> str | None:
    """The caller's address, for the audit log and sign-in throttling."""
    return request.client.host if request.client else None
