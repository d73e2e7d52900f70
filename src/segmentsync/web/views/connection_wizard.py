"""Admin > Connections > Add connection: the original product's wizard, step by step.

1 type · 2 display name · 3 who can use it · 4 *I agree* to the data privacy and compliance
notice · 5 *Connect* (steps 1–4 are checked) · 6 *Authenticate with <platform>* (OAuth: off to
the platform's consent page; Campaign Monitor also takes an API key and client ID) · 7 *Add
yourself as export user* · 8 *Save*.

With OAuth the platform sends the browser back through the API's callback, which saves the
connection and redirects to its page; that page then shows steps 7 and 8
(:func:`segmentsync.web.views.connections.connection_page`), marked by ``SETUP_KEY`` in the session.
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
from segmentsync.web.page import Form, Page, PostedForm, page_for
from segmentsync.web.routing import web_router

router = web_router()
Admin = Annotated[Page, page_for(Action.CONNECTIONS_MANAGE)]
SETUP_KEY = "connection_setup"  # the name of a connection whose OAuth setup is under way
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
            connected: bool = False, status: int = 200) -> Response:  # fmt: skip
    settings = page.runtime.settings
    oauth_ready = {kind.value: bool(access.oauth_app(settings, kind)[0]) for kind in ConnectionType}
    return page.render(
        "connection_new.html", status=status, title=page._("Add connection"), values=values,
        errors=errors or {}, connected=connected, oauth_ready=oauth_ready, types=list(ConnectionType),
    )  # fmt: skip


@router.get("/connections/new")
def new_connection(page: Admin, type: str = "") -> Response:
    return _wizard(page, values={"type": type, "shared": "admins"})


@router.post("/connections/new")
def wizard_step(page: Admin, form: PostedForm) -> Response:
    step = form.get("step")
    if step == "oauth":
        return _authenticate_oauth(page, form)
    if step == "save":
        return _save_with_api_key(page, form)
    return _connect(page, form)


def _check(page: Page, draft: ConnectionDraft) -> None:
    with page.transaction() as session:
        service.check_draft(session=session, draft=draft, actor=page.me)


def _connect(page: Page, form: Form) -> Response:
    """Step 5: *Connect* checks steps 1–4 and opens step 6."""
    try:
        _check(page, build(ConnectionDraft, _draft_data(form)))
    except SegmentSyncError as error:
        return _wizard(
            page,
            values=form.values(),
            errors=field_errors(page, error, FIELDS, labels=LABELS),
            status=error.status,
        )
    return _wizard(page, values=form.values(), connected=True)


def _authenticate_oauth(page: Page, form: Form) -> Response:
    """Step 6 with OAuth: off to the platform; steps 7–8 follow on the connection's page."""
    try:
        draft = build(OAuthStart, {**_draft_data(form), "add_me_as_export_user": False})
        with page.transaction() as session:
            started = oauth_flow.start(session=session, runtime=page.runtime, draft=draft, actor=page.me)
    except SegmentSyncError as error:
        errors = field_errors(page, error, FIELDS, labels=LABELS)
        connected = not STEPS_1_TO_4 & errors.keys()
        return _wizard(page, values=form.values(), errors=errors, connected=connected, status=error.status)
    page.request.session[SETUP_KEY] = draft.name
    return page.redirect(started.authorize_url)


def _save_with_api_key(page: Page, form: Form) -> Response:
    """Steps 6–8 with a Campaign Monitor API key: verified with the platform, then saved."""
    try:
        draft = build(ConnectionDraft, _draft_data(form))
        auth = build(ApiKeyAuth, {"api_key": form.raw("api_key").strip(), "client_id": form.get("client_id")})
        _check(page, draft)
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
