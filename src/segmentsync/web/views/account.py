"""Your own account: name, language, password and API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import Response

from segmentsync.auth import service as auth_service
from segmentsync.auth import sessions
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action
from segmentsync.errors import SegmentSyncError
from segmentsync.web.page import Page, PostedForm, page_for
from segmentsync.web.routing import web_router

router = web_router()
Me = Annotated[Page, page_for(Action.OWN_ACCOUNT)]


def _account(page: Page, *, errors: dict[str, str] | None = None, new_token: str | None = None,
             values: dict[str, str] | None = None, status: int = 200) -> Response:  # fmt: skip
    with page.transaction() as session:
        tokens = list(session.scalars(auth_service.token_query(user_id=page.me.id)))
        browser_sessions = sessions.of_user(
            session=session, user_id=page.me.id, now=page.runtime.clock(),
            lifetimes=sessions.Lifetimes.of(page.runtime.settings),
        )  # fmt: skip
    return page.render(
        "account.html",
        browser_sessions=browser_sessions,
        session_base="/account/sessions",
        status=status,
        title=page._("Account"),
        tokens=tokens,
        token_base="/account/tokens",  # noqa: S106  # a URL, not a password
        new_token=new_token,
        errors=errors or {},
        values=values or {},
    )


@router.get("/account")
def account(page: Me) -> Response:
    return _account(page)


@router.post("/account/profile")
def update_profile(page: Me, form: PostedForm) -> Response:
    language = form.get("language")
    try:
        with page.transaction() as session:
            me = session.get(User, page.me.id)
            assert me is not None  # signed in a moment ago
            auth_service.update_profile(
                session=session, user=me, actor=me, name=form.get("name"), language=language or None,
                clear_language=not language, ip=page.ip,
            )  # fmt: skip
    except SegmentSyncError as error:
        return _account(page, errors={error.field or "name": page.error_text(error)}, status=error.status)
    page.request.session.pop("lang", None)
    page.flash(page._("Your profile is saved."))
    return page.redirect("/account")


@router.post("/account/password")
def change_password(page: Me, form: PostedForm) -> Response:
    try:
        with page.transaction() as session:
            me = session.get(User, page.me.id)
            assert me is not None  # signed in a moment ago
            auth_service.change_password(
                session=session, user=me, current_password=form.raw("current_password"),
                new_password=form.raw("new_password"), ip=page.ip, keep_session=page.session_id,
            )  # fmt: skip
    except SegmentSyncError as error:
        return _account(
            page, errors={error.field or "new_password": page.error_text(error)}, status=error.status
        )
    page.flash(page._("Your password is changed."))
    return page.redirect("/account")


@router.post("/account/tokens")
def create_token(page: Me, form: PostedForm) -> Response:
    try:
        with page.transaction() as session:
            _, token = auth_service.create_api_token(
                session=session, user=page.me, name=form.get("token_name"), actor=page.me,
                now=page.runtime.clock(), ip=page.ip,
            )  # fmt: skip
    except SegmentSyncError as error:
        return _account(page, errors={"token_name": page.error_text(error)}, values=form.values(), status=422)
    return _account(page, new_token=token)


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(token_id: int, page: Me, form: PostedForm) -> Response:
    with page.transaction() as session:
        token = auth_service.get_api_token(session=session, token_id=token_id, user_id=page.me.id)
        auth_service.revoke_api_token(
            session=session, token=token, actor=page.me, now=page.runtime.clock(), ip=page.ip
        )
    page.flash(page._("The token is revoked."))
    return page.redirect("/account")


@router.post("/account/sessions/{session_id}/end")
def end_session(session_id: int, page: Me, form: PostedForm) -> Response:
    with page.transaction() as session:
        auth_service.end_sessions(
            session=session, user=page.me, actor=page.me, session_id=session_id, ip=page.ip
        )
    if session_id == page.session_id:
        page.request.session.clear()
        return page.redirect("/sign-in")
    page.flash(page._("That browser is signed out."))
    return page.redirect("/account#sessions")


@router.post("/account/sessions/end-all")
def sign_out_everywhere(page: Me, form: PostedForm) -> Response:
    """Every session of yours ends, this browser's too."""
    with page.transaction() as session:
        auth_service.end_sessions(session=session, user=page.me, actor=page.me, ip=page.ip)
    page.request.session.clear()
    return page.redirect("/sign-in")
