"""Sign in, sign out and the language switch."""

from __future__ import annotations

import secrets

from fastapi import Response

from segmentsync.auth import service as auth_service
from segmentsync.auth import sessions, signin
from segmentsync.auth.models import User
from segmentsync.db import transaction
from segmentsync.errors import SegmentSyncError
from segmentsync.web import i18n
from segmentsync.web.page import AnyPage, Page, PostedForm
from segmentsync.web.routing import web_router

router = web_router()
HOME = "/exports"


def safe_next(target: str | None) -> str:
    """Only paths of this site: never an open redirect to another one."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return HOME
    return target


def _sign_in_form(page: Page, *, next_url: str, email: str = "", error: str | None = None) -> Response:
    if not page.request.session.get("csrf"):
        # The sign-in form is protected like every other form (no login CSRF).
        page.request.session["csrf"] = secrets.token_urlsafe(32)
    return page.render(
        "sign_in.html",
        status=401 if error else 200,
        title=page._("Sign in"),
        next_url=next_url,
        email=email,
        error=error,
        csrf=page.request.session["csrf"],
    )


@router.get("/sign-in")
def sign_in_page(page: AnyPage, next: str | None = None) -> Response:
    if page.user is not None:
        return page.redirect(safe_next(next))
    return _sign_in_form(page, next_url=safe_next(next))


@router.post("/sign-in")
def sign_in(page: AnyPage, form: PostedForm) -> Response:
    email, next_url = form.get("email"), safe_next(form.get("next"))
    try:
        # Its own transaction: a failed attempt is recorded (for throttling) although refused.
        with transaction(page.runtime.sessions) as session:
            user = signin.authenticate(
                session=session,
                email=email,
                password=form.raw("password"),
                ip=page.ip,
                now=page.runtime.clock(),
            )
            if user is not None:
                _, sid = sessions.start(
                    session=session, user=user, ip=page.ip, user_agent=page.request.headers.get("user-agent", ""),
                    now=page.runtime.clock(), lifetimes=sessions.Lifetimes.of(page.runtime.settings),
                )  # fmt: skip
    except SegmentSyncError as error:
        return _sign_in_form(page, next_url=next_url, email=email, error=page.error_text(error))
    if user is None:
        return _sign_in_form(page, next_url=next_url, email=email, error=page._("Wrong email or password."))
    chosen = page.request.session.get("lang")
    page.request.session.clear()  # a fresh session: nothing survives from before signing in
    page.request.session.update(signin.cookie_values(sid))
    if chosen:
        page.request.session["lang"] = chosen
    return page.redirect(next_url)


@router.post("/sign-out")
def sign_out(page: AnyPage, form: PostedForm) -> Response:
    if page.user is not None and page.session_id is not None:
        with page.transaction() as session:
            signin.sign_out(
                session=session,
                user=page.user,
                session_id=page.session_id,
                ip=page.ip,
                now=page.runtime.clock(),
            )
    page.request.session.clear()
    return page.redirect("/sign-in")


@router.post("/language")
def choose_language(page: AnyPage, form: PostedForm) -> Response:
    """The header's language switch: the user's setting (empty: follow the browser)."""
    language = form.get("language")
    if language and language not in i18n.LANGUAGE_NAMES:
        language = ""
    if page.user is not None:
        with page.transaction() as session:
            me = session.get(User, page.user.id)
            if me is not None:
                auth_service.update_profile(
                    session=session, user=me, actor=me, language=language or None,
                    clear_language=not language, ip=page.ip,
                )  # fmt: skip
    if language:
        page.request.session["lang"] = language
    else:
        page.request.session.pop("lang", None)
    return page.redirect(safe_next(form.get("next")))
