"""What every view gets: the signed-in user, their language, the CSRF token, rendering, flashes.

The browser's cookie holds the same keys as the API's (see :mod:`segmentsync.auth.signin`):
``sid`` (the server-side session) and ``csrf``; the pages add ``lang`` (a language chosen before signing
in) and ``flash`` (one-time notices shown on the next page).

Views open their own transactions (:meth:`Page.transaction`) so that a domain error rolls the
work back and the form can be shown again, with the error beside its field and the input kept.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from babel.numbers import format_decimal
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from segmentsync.auth import sessions
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action, allowed
from segmentsync.db import id_from_text, transaction
from segmentsync.errors import Forbidden, SegmentSyncError, Unauthenticated
from segmentsync.runtime import Runtime
from segmentsync.web import i18n, labels, messages
from segmentsync.web.messages import capitalised
from segmentsync.web.templating import format_duration, locale_of, render

FLASH_KEY = "flash"


@dataclass
class Page:
    """One request of a page: who asks, in which language, and how to answer."""

    request: Request
    runtime: Runtime
    user: User | None
    lang: str
    tr: i18n.Translator = field(init=False)

    def __post_init__(self) -> None:
        self.tr = i18n.Translator(self.lang)

    def _(self, message: str, **values: object) -> str:
        return self.tr.gettext(message, **values)

    @property
    def me(self) -> User:
        if self.user is None:
            raise Unauthenticated("sign in first")
        return self.user

    @property
    def csrf(self) -> str:
        return str(self.request.session.get("csrf", ""))

    @property
    def session_id(self) -> int | None:
        """This browser's server-side session (None: not signed in)."""
        value = getattr(self.request.state, "session_id", None)
        return value if isinstance(value, int) else None

    @property
    def ip(self) -> str | None:
        return self.request.client.host if self.request.client else None

    def number(self, value: float | None) -> str:
        return "—" if value is None else str(format_decimal(value, locale=locale_of(self.lang)))

    def duration(self, seconds: float | None) -> str:
        return format_duration(seconds, self.lang)

    def label(self, kind: str, value: object) -> str:
        return labels.Labeler(self.tr)(kind, value)

    def can(self, action: Action) -> bool:
        return self.user is not None and self.user.is_active and allowed(self.user.role, action)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error."""
        with self.runtime.sessions() as session, session.begin():
            yield session

    # -- answering -------------------------------------------------------------------------

    def flash(self, message: str, kind: str = "ok") -> None:
        notices = list(self.request.session.get(FLASH_KEY, []))
        notices.append({"kind": kind, "message": message})
        self.request.session[FLASH_KEY] = notices[-5:]

    def error_text(self, error: SegmentSyncError) -> str:
        """The error in the page's language where we know its code, else the service's words."""
        known = labels.ERRORS.get(error.code)
        return self.tr(known) if known else messages.error_sentence(self.tr, error)

    def _flash_text(self, notice: dict[str, Any]) -> str:
        """A notice in the page's language where its code is known, always a sentence."""
        known = labels.ERRORS.get(str(notice.get("code", "")))
        return (
            self.tr(known)
            if known
            else capitalised(messages.localise_text(self.tr, str(notice.get("message", ""))))
        )

    def render(self, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        flashes = [
            {**notice, "message": self._flash_text(notice)}
            for notice in self.request.session.pop(FLASH_KEY, [])
        ]
        base = {
            "page": self,
            "_": self.tr.gettext,
            "lang": self.lang,
            "languages": i18n.LANGUAGE_NAMES,
            "user": self.user,
            "csrf": self.csrf,
            "flashes": flashes,
            "path": self.request.url.path,
            "Action": Action,
            "label": labels.Labeler(self.tr),
            "audit_action": lambda action: labels.audit_action(self.tr, action),
            "audit_changes": labels.audit_changes,
        }
        merged = {**base, **context}
        # The forms' hidden CSRF field, made once: a macro call per form cost a list of 50
        # exports (two forms a row) ≈ 1 ms.
        merged["csrf_input"] = Markup('<input type="hidden" name="csrf_token" value="%s">') % merged["csrf"]
        return HTMLResponse(render(template, merged), status_code=status)

    def redirect(self, url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)


# ---------------------------------------------------------------- dependencies


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _signed_in_user(request: Request, runtime: Runtime) -> User | None:
    sid = request.session.get(sessions.SID_KEY)
    if sid is None:
        return None
    with transaction(runtime.sessions) as session:  # it may note the session's last use
        found = sessions.current(
            session=session, token=sid, now=runtime.clock(), lifetimes=sessions.Lifetimes.of(runtime.settings)
        )
    if found is None:
        request.session.clear()
        return None
    user, browser = found
    request.state.session_id = browser.id
    return user


def page_language(request: Request, user: User | None) -> str:
    if user is not None and user.language:
        return user.language
    chosen = request.session.get("lang")
    if chosen in i18n.LANGUAGE_NAMES:
        return str(chosen)
    return i18n.negotiate(request.headers.get("accept-language"))


def any_page(request: Request) -> Page:
    """A page anyone may see (the sign-in page): the user if signed in, else None."""
    runtime = _runtime(request)
    user = _signed_in_user(request, runtime)
    page = Page(request=request, runtime=runtime, user=user, lang=page_language(request, user))
    request.state.page = page  # the error pages reuse it (language, user)
    return page


def signed_in_page(page: Annotated[Page, Depends(any_page)]) -> Page:
    if page.user is None:
        raise Unauthenticated("sign in to see this page")
    return page


class RequirePage:
    """The dependency ``page_for(action)``: the page, if the policy table allows ``action``."""

    def __init__(self, action: Action) -> None:
        self.action = action

    def __call__(self, page: Annotated[Page, Depends(signed_in_page)]) -> Page:
        if not page.can(self.action):
            raise Forbidden(
                "your role does not allow %(action)s", params={"action": self.action.value}, code="forbidden"
            )
        return page

    def __repr__(self) -> str:
        return f"page_for({self.action.value})"


def page_for(action: Action) -> Any:
    """``page: Annotated[Page, page_for(Action.X)]`` on every view."""
    return Depends(RequirePage(action))


AnyPage = Annotated[Page, Depends(any_page)]


# ---------------------------------------------------------------- forms


class Form:
    """The posted form of a page, its CSRF token already checked."""

    def __init__(self, data: FormData) -> None:
        self.data = data

    def get(self, name: str, default: str = "") -> str:
        value = self.data.get(name)
        return value.strip() if isinstance(value, str) else default

    def raw(self, name: str) -> str:
        """The value as typed (secrets: no stripping)."""
        value = self.data.get(name)
        return value if isinstance(value, str) else ""

    def getlist(self, name: str) -> list[str]:
        return [value.strip() for value in self.data.getlist(name) if isinstance(value, str)]

    def bool(self, name: str) -> bool:
        return self.get(name) in ("1", "on", "true", "yes")

    def int(self, name: str) -> int | None:
        return id_from_text(self.get(name))

    def values(self) -> dict[str, str]:
        """The non-secret fields, to show the form again as it was typed."""
        return {
            key: value
            for key, value in self.data.items()
            if isinstance(value, str)
            and key != "csrf_token"
            and "secret" not in key
            and key != "api_key"
            and "password" not in key
        }


async def posted_form(request: Request) -> Form:
    """The form of a POST, refused unless it carries the session's CSRF token."""
    data = await request.form()
    sent = data.get("csrf_token")
    expected = request.session.get("csrf")
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(str(expected), sent):
        raise Forbidden(
            "the form's security token is missing or wrong; reload the page and try again", code="csrf"
        )
    return Form(data)


PostedForm = Annotated[Form, Depends(posted_form)]
