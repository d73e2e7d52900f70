"""Admin > Users: users, roles, deactivation, passwords and API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import Response
from sqlalchemy.orm import Session

from segmentsync.api.pagination import PageParams, paginate
from segmentsync.auth import service as auth_service
from segmentsync.auth import sessions
from segmentsync.auth.models import Role, User
from segmentsync.auth.policy import Action
from segmentsync.errors import Invalid, SegmentSyncError
from segmentsync.web.page import Form, Page, PostedForm, page_for
from segmentsync.web.routing import web_router

router = web_router()
Admin = Annotated[Page, page_for(Action.USERS_MANAGE)]
PER_PAGE = 50


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError as exc:
        raise Invalid("choose a role", field="role") from exc


def _users(page: Page, *, q: str = "", offset: int = 0, errors: dict[str, str] | None = None,
           values: dict[str, str] | None = None, created: tuple[str, str] | None = None,
           status: int = 200) -> Response:  # fmt: skip
    params = PageParams(limit=PER_PAGE, offset=max(offset, 0))
    with page.transaction() as session:
        rows, total = paginate(session, auth_service.user_query(search=q or None), params)
        export_user_of = auth_service.export_user_of(session=session, user_ids=[u.id for u in rows])
    return page.render(
        "users.html", status=status, title=page._("Users"), users=rows, total=total, offset=params.offset,
        limit=PER_PAGE, q=q, export_user_of=export_user_of, errors=errors or {}, values=values or {},
        created=created, roles=list(Role),
    )  # fmt: skip


@router.get("/users")
def users(page: Admin, q: str = "", offset: int = 0) -> Response:
    return _users(page, q=q, offset=offset)


@router.post("/users")
def create_user(page: Admin, form: PostedForm) -> Response:
    given = form.raw("password")
    generated = auth_service.generate_password() if not given else None
    try:
        with page.transaction() as session:
            user = auth_service.create_user(
                session=session, email=form.get("email"), role=_role(form.get("role")), name=form.get("name"),
                password=given or generated, language=form.get("language") or None, actor=page.me, ip=page.ip,
            )  # fmt: skip
            email = user.email
    except SegmentSyncError as error:
        errors = {error.field or "email": page.error_text(error)}
        return _users(page, errors=errors, values=form.values(), status=error.status)
    if generated:
        return _users(page, created=(email, generated))
    page.flash(page._("The user %(email)s is created.", email=email))
    return page.redirect("/users")


def _user_page(page: Page, user_id: int, *, errors: dict[str, str] | None = None,
               new_token: str | None = None, status: int = 200) -> Response:  # fmt: skip
    with page.transaction() as session:
        user = auth_service.get_user(session=session, user_id=user_id)
        tokens = list(session.scalars(auth_service.token_query(user_id=user.id)))
        export_user_of = auth_service.export_user_of(session=session, user_ids=[user.id])[user.id]
        browser_sessions = sessions.of_user(
            session=session, user_id=user.id, now=page.runtime.clock(),
            lifetimes=sessions.Lifetimes.of(page.runtime.settings),
        )  # fmt: skip
    return page.render(
        "user.html", status=status, title=user.email, subject=user, tokens=tokens, new_token=new_token,
        browser_sessions=browser_sessions, session_base=f"/users/{user.id}/sessions",
        token_base=f"/users/{user.id}/tokens", export_user_of=export_user_of, errors=errors or {},
        values={}, roles=list(Role),
    )  # fmt: skip


@router.get("/users/{user_id}")
def user_page(user_id: int, page: Admin) -> Response:
    return _user_page(page, user_id)


def _apply_changes(session: Session, page: Page, user: User, form: Form) -> None:
    role = _role(form.get("role"))
    if role is not user.role:
        auth_service.set_role(session=session, user=user, role=role, actor=page.me, ip=page.ip)
    active = form.bool("is_active")
    if active and not user.is_active:
        auth_service.reactivate(session=session, user=user, actor=page.me, ip=page.ip)
    elif not active and user.is_active:
        auth_service.deactivate(session=session, user=user, actor=page.me, ip=page.ip)
    language = form.get("language")
    auth_service.update_profile(
        session=session, user=user, actor=page.me, name=form.get("name"), language=language or None,
        clear_language=not language, ip=page.ip,
    )  # fmt: skip


@router.post("/users/{user_id}")
def update_user(user_id: int, page: Admin, form: PostedForm) -> Response:
    try:
        with page.transaction() as session:
            user = auth_service.get_user(session=session, user_id=user_id)
            _apply_changes(session, page, user, form)
    except SegmentSyncError as error:
        return _user_page(
            page, user_id, errors={error.field or "role": page.error_text(error)}, status=error.status
        )
    page.flash(page._("The user is saved."))
    return page.redirect(f"/users/{user_id}")


@router.post("/users/{user_id}/password")
def set_password(user_id: int, page: Admin, form: PostedForm) -> Response:
    try:
        with page.transaction() as session:
            user = auth_service.get_user(session=session, user_id=user_id)
            auth_service.set_password(
                session=session, user=user, new_password=form.raw("new_password"), actor=page.me, ip=page.ip,
                keep_session=page.session_id if user.id == page.me.id else None,
            )  # fmt: skip
    except SegmentSyncError as error:
        return _user_page(page, user_id, errors={"new_password": page.error_text(error)}, status=error.status)
    page.flash(page._("The password is set."))
    return page.redirect(f"/users/{user_id}")


@router.post("/users/{user_id}/tokens")
def create_token(user_id: int, page: Admin, form: PostedForm) -> Response:
    try:
        with page.transaction() as session:
            user = auth_service.get_user(session=session, user_id=user_id)
            _, token = auth_service.create_api_token(
                session=session, user=user, name=form.get("token_name"), actor=page.me,
                now=page.runtime.clock(), ip=page.ip,
            )  # fmt: skip
    except SegmentSyncError as error:
        return _user_page(page, user_id, errors={"token_name": page.error_text(error)}, status=error.status)
    return _user_page(page, user_id, new_token=token)


@router.post("/users/{user_id}/tokens/{token_id}/revoke")
def revoke_token(user_id: int, token_id: int, page: Admin, form: PostedForm) -> Response:
    with page.transaction() as session:
        token = auth_service.get_api_token(session=session, token_id=token_id, user_id=user_id)
        auth_service.revoke_api_token(
            session=session, token=token, actor=page.me, now=page.runtime.clock(), ip=page.ip
        )
    page.flash(page._("The token is revoked."))
    return page.redirect(f"/users/{user_id}")


@router.post("/users/{user_id}/sessions/{session_id}/end")
def end_session(user_id: int, session_id: int, page: Admin, form: PostedForm) -> Response:
    with page.transaction() as session:
        user = auth_service.get_user(session=session, user_id=user_id)
        auth_service.end_sessions(
            session=session, user=user, actor=page.me, session_id=session_id, ip=page.ip
        )
    if session_id == page.session_id:
        page.request.session.clear()
        return page.redirect("/sign-in")
    page.flash(page._("That browser is signed out."))
    return page.redirect(f"/users/{user_id}#sessions")


@router.post("/users/{user_id}/sessions/end-all")
def end_all_sessions(user_id: int, page: Admin, form: PostedForm) -> Response:
    with page.transaction() as session:
        user = auth_service.get_user(session=session, user_id=user_id)
        auth_service.end_sessions(session=session, user=user, actor=page.me, ip=page.ip)
    if user_id == page.me.id:
        page.request.session.clear()
        return page.redirect("/sign-in")
    page.flash(page._("Every browser of %(email)s is signed out.", email=user.email))
    return page.redirect(f"/users/{user_id}#sessions")
