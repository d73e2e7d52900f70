"""Admin > Connections: the list, one connection (edit, re-authenticate, export user, remove, detach).

The *Add connection* wizard is in :mod:`segmentsync.web.views.connection_wizard`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Response

from segmentsync.auth.policy import Action
from segmentsync.connections import lists, oauth_flow, service
from segmentsync.connections.models import ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionOut, ConnectionUpdate
from segmentsync.errors import SegmentSyncError
from segmentsync.web.forms import build, field_errors
from segmentsync.web.page import Page, PostedForm, page_for
from segmentsync.web.routing import web_router
from segmentsync.web.views import connection_wizard
from segmentsync.web.views.connection_wizard import LABELS

router = web_router()
router.include_router(connection_wizard.router)  # /connections/new before /connections/{id}
Admin = Annotated[Page, page_for(Action.CONNECTIONS_MANAGE)]
EDIT_FIELDS = {"name": "name", "shared_with_contributors": "shared", "api_key": "api_key", "client_id": "client_id",
               "auth": "api_key", "method": "api_key"}  # fmt: skip


@router.get("/connections")
def connections(page: Admin) -> Response:
    with page.transaction() as session:
        rows = list(session.scalars(service.connection_query(actor=page.me)))
        items = service.views(session=session, connections=rows, actor=page.me)
    return page.render("connections.html", title=page._("Connections"), connections=items)


def _out(page: Page, connection_id: int) -> ConnectionOut:
    with page.transaction() as session:
        connection = service.get_for_admin(session=session, connection_id=connection_id, actor=page.me)
        out = service.view(session=session, connection=connection, actor=page.me)
    assert isinstance(out, ConnectionOut)  # admins always get the full view
    return out


def _connection(page: Page, connection_id: int, *, errors: dict[str, str] | None = None,
                in_use: list[dict[str, Any]] | None = None, status: int = 200) -> Response:  # fmt: skip
    out = _out(page, connection_id)
    return page.render(
        "connection.html", status=status, title=out.name, connection=out, errors=errors or {},
        in_use=in_use, is_export_user=out.export_user is not None and out.export_user.id == page.me.id,
        is_cm=out.type is ConnectionType.CAMPAIGN_MONITOR,
    )  # fmt: skip


@router.get("/connections/{connection_id}")
def connection_page(connection_id: int, page: Admin) -> Response:
    return _connection(page, connection_id)


@router.post("/connections/{connection_id}")
def edit_connection(connection_id: int, page: Admin, form: PostedForm) -> Response:
    try:
        data = build(
            ConnectionUpdate,
            {"name": form.get("name"), "shared_with_contributors": form.get("shared") == "contributors"},
        )
        with page.transaction() as session:
            connection = service.get_for_admin(session=session, connection_id=connection_id, actor=page.me)
            service.update(
                session=session,
                runtime=page.runtime,
                connection=connection,
                data=data,
                actor=page.me,
                ip=page.ip,
            )
    except SegmentSyncError as error:
        errors = field_errors(page, error, EDIT_FIELDS, default="name", labels=LABELS)
        return _connection(page, connection_id, errors=errors, status=error.status)
    page.flash(page._("The connection is saved."))
    return page.redirect(f"/connections/{connection_id}")


@router.post("/connections/{connection_id}/api-key")
def reauthenticate_with_key(connection_id: int, page: Admin, form: PostedForm) -> Response:
    try:
        auth = build(ApiKeyAuth, {"api_key": form.raw("api_key").strip(), "client_id": form.get("client_id")})
        with page.transaction() as session:
            connection = service.get_for_admin(session=session, connection_id=connection_id, actor=page.me)
            service.update(
                session=session, runtime=page.runtime, connection=connection, data=ConnectionUpdate(auth=auth),
                actor=page.me, ip=page.ip,
            )  # fmt: skip
    except SegmentSyncError as error:
        errors = field_errors(page, error, EDIT_FIELDS, default="api_key", labels=LABELS)
        return _connection(page, connection_id, errors=errors, status=error.status)
    page.flash(page._("The connection is authenticated again."))
    return page.redirect(f"/connections/{connection_id}")


@router.post("/connections/{connection_id}/oauth")
def reauthenticate_with_oauth(connection_id: int, page: Admin, form: PostedForm) -> Response:
    try:
        with page.transaction() as session:
            connection = service.get_for_admin(session=session, connection_id=connection_id, actor=page.me)
            started = oauth_flow.start_reauthentication(
                session=session, runtime=page.runtime, connection=connection, actor=page.me
            )
    except SegmentSyncError as error:
        return _connection(page, connection_id, errors={"oauth": page.error_text(error)}, status=error.status)
    return page.redirect(started.authorize_url)


@router.post("/connections/{connection_id}/export-user")
def add_export_user(connection_id: int, page: Admin, form: PostedForm) -> Response:
    with page.transaction() as session:
        connection = service.get_for_admin(session=session, connection_id=connection_id, actor=page.me)
        service.add_export_user(session=session, connection=connection, actor=page.me, ip=page.ip)
    page.flash(page._("Exports on this connection now run on your behalf."))
    return page.redirect(f"/connections/{connection_id}")


@router.post("/connections/{connection_id}/verify")
def verify(connection_id: int, page: Admin, form: PostedForm) -> Response:
    with page.transaction() as session:
        connection = service.get_for_admin(session=session, connection_id=connection_id, actor=page.me)
    try:
        account = lists.verify(runtime=page.runtime, connection=connection)  # outside any transaction
    except SegmentSyncError as error:
        return _connection(
            page, connection_id, errors={"verify": page.error_text(error)}, status=error.status
        )
    page.flash(page._("The platform accepts the credentials (account: %(name)s).", name=account.name))
    return page.redirect(f"/connections/{connection_id}")


@router.post("/connections/{connection_id}/remove")
def remove(connection_id: int, page: Admin, form: PostedForm) -> Response:
    try:
        with page.transaction() as session:
            connection = service.get_for_admin(session=session, connection_id=connection_id, actor=page.me)
            name = connection.name
            service.remove(session=session, connection=connection, actor=page.me, ip=page.ip)
    except SegmentSyncError as error:
        if error.code != "connection_in_use":
            raise
        in_use = list(error.details.get("exports", []))
        message = page._("The connection is used by these exports. Detach them or remove them first.")
        return _connection(page, connection_id, errors={"remove": message}, in_use=in_use, status=409)
    page.flash(page._("The connection %(name)s is removed.", name=name))
    return page.redirect("/connections")


@router.post("/connections/{connection_id}/detach")
def detach(connection_id: int, page: Admin, form: PostedForm) -> Response:
    export_id = form.int("export_id")
    with page.transaction() as session:
        connection = service.get_for_admin(session=session, connection_id=connection_id, actor=page.me)
        detached = service.detach(
            session=session, connection=connection, actor=page.me,
            export_ids=[export_id] if export_id is not None else None, ip=page.ip,
        )  # fmt: skip
        names = ", ".join(export.name for export in detached)
    page.flash(page._("Detached: %(names)s. The exports are kept, with no connection.", names=names))
    return page.redirect(f"/connections/{connection_id}")
