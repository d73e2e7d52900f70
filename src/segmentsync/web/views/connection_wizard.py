"""Admin > Connections > Add connection: the original product's wizard, step by step.

1 type · 2 display name · 3 who can use it · 4 *I agree* to the data privacy and compliance
notice · 5 *Connect* (steps 1–4 are checked) · 6 *Authenticate with <platform>* (OAuth: off to
the platform's consent page; Campaign Monitor also takes an API key and client ID) · 7 *Add
yourself as export user* · 8 *Save*.

Nothing is saved before *Save*. With OAuth the platform sends the browser back through the
API's callback, which keeps the verified credentials pending (:func:`oauth_flow.save_pending`)
and returns here at step 7 (``?pending=<token>``). What was typed before leaving for the
platform is kept in the session (``SETUP_KEY``): a refusal there (*Deny*) returns to step 6 with
every field as it was (``?resume=1``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Response

from segmentsync.auth.policy import Action
from segmentsync.connections import access, oauth_flow, service
from segmentsync.connections.models import ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionDraft, OAuthStart
from segmentsync.errors import SegmentSyncError
from segmentsync.web.forms import build, field_errors
from segmentsync.web.i18n import N_
from segmentsync.web.labels import ERRORS
from segmentsync.web.page import Form, Page, PostedForm, page_for
from segmentsync.web.routing import web_router

router = web_router()
Admin = Annotated[Page, page_for(Action.CONNECTIONS_MANAGE)]
SETUP_KEY = "connection_setup"  # what was typed in the wizard before leaving for the platform
FIELDS = {
    "type": "type",
    "name": "name",
    "shared_with_contributors": "shared",
    "consent": "consent",
    "api_key": "api_key",
    "client_id": "client_id",
    "auth": "api_key",
    "method": "api_key",
}
LABELS = {"name": N_("Display name"), "shared": N_("Who can use this connection")}
STEPS_1_TO_4 = frozenset({"type", "name", "shared", "consent"})


def _draft_data(form: Form) -> dict[str, Any]:
    return {
        "type": form.get("type") or None,
        "name": form.get("name"),
        "shared_with_contributors": form.get("shared") == "contributors",
        "consent": form.bool("consent"),
        "add_me_as_export_user": form.bool("add_me"),
    }


def _wizard(page: Page, *, values: dict[str, str], errors: dict[str, str] | None = None,
            connected: bool = False, pending: oauth_flow.Pending | None = None, status: int = 200) -> Response:  # fmt: skip
    settings = page.runtime.settings
    oauth_ready = {kind.value: bool(access.oauth_app(settings, kind)[0]) for kind in ConnectionType}
    return page.render(
        "connection_new.html", status=status, title=page._("Add connection"), values=values,
        errors=errors or {}, connected=connected or pending is not None, oauth_ready=oauth_ready,
        types=list(ConnectionType), pending=pending,
    )  # fmt: skip


@router.get("/connections/new")
def new_connection(page: Admin, type: str = "", resume: bool = False, pending: str = "") -> Response:
    if pending:
        with page.transaction() as session:
            held = oauth_flow.pending(session=session, runtime=page.runtime, token=pending, actor=page.me)
        values = {"type": held.draft.type.value, "name": held.draft.name, "consent": "1",
                  "shared": "contributors" if held.draft.shared_with_contributors else "admins"}  # fmt: skip
        return _wizard(page, values=values, pending=held)
    typed = page.request.session.get(SETUP_KEY)
    if resume and isinstance(typed, dict):  # back from the platform without an authorization
        return _wizard(page, values={str(k): str(v) for k, v in typed.items()}, connected=True)
    page.request.session.pop(SETUP_KEY, None)
    return _wizard(page, values={"type": type, "shared": "admins"})


@router.post("/connections/new")
def wizard_step(page: Admin, form: PostedForm) -> Response:
    step = form.get("step")
    if step == "oauth":
        return _authenticate_oauth(page, form)
    if step == "save":
        return _save_with_api_key(page, form)
    if step == "finish":
        return _finish_oauth(page, form)
    if step == "cancel":
        return _cancel_oauth(page, form)
    return _connect(page, form)


def _check(page: Page, draft: ConnectionDraft) -> None:
    with page.transaction() as session:
        service.check_draft(session=session, draft=draft, actor=page.me)


def _steps_1_to_4(page: Page, form: Form) -> tuple[ConnectionDraft | None, dict[str, str]]:
    """The draft of steps 1–4, or every problem with them at once (beside its field)."""
    errors: dict[str, str] = {}
    if not form.bool("consent"):
        errors["consent"] = page._(ERRORS["consent_required"])
    try:
        draft = build(ConnectionDraft, _draft_data(form))
    except SegmentSyncError as error:
        return None, {**field_errors(page, error, FIELDS, labels=LABELS), **errors}
    if not errors:
        try:
            _check(page, draft)
        except SegmentSyncError as error:
            errors = field_errors(page, error, FIELDS, labels=LABELS)
    return draft, errors


def _connect(page: Page, form: Form) -> Response:
    """Step 5: *Connect* checks steps 1–4 and opens step 6."""
    _, errors = _steps_1_to_4(page, form)
    if errors:
        return _wizard(page, values=form.values(), errors=errors, status=422)
    return _wizard(page, values=form.values(), connected=True)


def _authenticate_oauth(page: Page, form: Form) -> Response:
    """Step 6 with OAuth: off to the platform; it sends the browser back to step 7."""
    try:
        draft = build(OAuthStart, {**_draft_data(form), "add_me_as_export_user": False})
        with page.transaction() as session:
            started = oauth_flow.start(
                session=session, runtime=page.runtime, draft=draft, actor=page.me, hold=True
            )
    except SegmentSyncError as error:
        errors = field_errors(page, error, FIELDS, labels=LABELS)
        connected = not STEPS_1_TO_4 & errors.keys()
        return _wizard(page, values=form.values(), errors=errors, connected=connected, status=error.status)
    page.request.session[SETUP_KEY] = form.values()
    return page.redirect(started.authorize_url)


def _finish_oauth(page: Page, form: Form) -> Response:
    """Steps 7 and 8 after OAuth: *Add yourself as export user* and *Save* make the connection."""
    with page.transaction() as session:
        connection = oauth_flow.save_pending(
            session=session, runtime=page.runtime, token=form.get("pending"), actor=page.me,
            add_me=form.bool("add_me"), ip=page.ip,
        )  # fmt: skip
        name = connection.name
    page.request.session.pop(SETUP_KEY, None)
    page.flash(page._("The connection %(name)s is saved.", name=name))
    return page.redirect("/connections")


def _cancel_oauth(page: Page, form: Form) -> Response:
    with page.transaction() as session:
        oauth_flow.discard_pending(
            session=session, runtime=page.runtime, token=form.get("pending"), actor=page.me
        )
    page.request.session.pop(SETUP_KEY, None)
    page.flash(page._("Nothing was saved."))
    return page.redirect("/connections")


def _save_with_api_key(page: Page, form: Form) -> Response:
    """Steps 6–8 with a Campaign Monitor API key: verified with the platform, then saved."""
    draft, errors = _steps_1_to_4(page, form)
    try:
        auth = build(ApiKeyAuth, {"api_key": form.raw("api_key").strip(), "client_id": form.get("client_id")})
    except SegmentSyncError as error:
        errors = {**field_errors(page, error, FIELDS, default="api_key", labels=LABELS), **errors}
    if errors or draft is None:
        connected = not STEPS_1_TO_4 & errors.keys()
        return _wizard(page, values=form.values(), errors=errors, connected=connected, status=422)
    try:
        # The platform is called outside any transaction (no lock held while it answers).
        verified = access.authenticate(runtime=page.runtime, type=draft.type, auth=auth)
        with page.transaction() as session:
            connection = service.save_new(
                session=session,
                runtime=page.runtime,
                draft=draft,
                verified=verified,
                actor=page.me,
                ip=page.ip,
            )
            name = connection.name
    except SegmentSyncError as error:
        errors = field_errors(page, error, FIELDS, default="api_key", labels=LABELS)
        return _wizard(page, values=form.values(), errors=errors, connected=True, status=error.status)
    page.flash(page._("The connection %(name)s is saved.", name=name))
    return page.redirect("/connections")
