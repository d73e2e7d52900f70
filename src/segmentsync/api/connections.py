"""Admin > Connections: the connection setup (API key, tokens or OAuth), edit, remove, detach,
and, for the export form, the lists a connection sees.

Routes that talk to the platform end the request's transaction first (:func:`_release`): a token
refresh commits in its own transaction, which on SQLite needs the write lock the request holds.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from segmentsync.api.deps import RuntimeDep, SessionDep, client_ip, require
from segmentsync.api.pagination import Page, PageDep, PageParams, paginate
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action
from segmentsync.connections import lists, oauth_flow, service
from segmentsync.connections.models import ConnectionType
from segmentsync.connections.schemas import (
    ConnectionCreate,
    ConnectionOut,
    ConnectionSummary,
    ConnectionUpdate,
    DetachRequest,
    ExportRef,
    FieldOut,
    ListOut,
    OAuthStart,
    OAuthStarted,
    VerifyOut,
)
from segmentsync.errors import SegmentSyncError

router = APIRouter(prefix="/connections", tags=["connections"])
Admin = Annotated[User, Depends(require(Action.CONNECTIONS_MANAGE))]
Lister = Annotated[User, Depends(require(Action.CONNECTIONS_LIST))]
AnyView = ConnectionOut | ConnectionSummary
T = TypeVar("T")

# The web UI's page for one connection; the OAuth callback sends the browser there.
UI_CONNECTION_PAGE = "/connections/{id}"
# Where a failed authorization sends the browser back: the wizard, as it was typed, at step 6.
UI_NEW_CONNECTION_PAGE = "/connections/new?resume=1#step-6"
UI_PENDING_PAGE = "/connections/new?pending={token}#step-7"  # authorized, waiting for Save


def _release(session: Session) -> None:
    """End the request's transaction before calling the platform (see the module docstring)."""
    session.commit()


def _out(session: Session, connection_id: int, actor: User) -> ConnectionOut:
    connection = service.get_for_admin(session=session, connection_id=connection_id, actor=actor)
    out = service.view(session=session, connection=connection, actor=actor)
    assert isinstance(out, ConnectionOut)  # admins always get the full view
    return out


def _page(items: list[T], page: PageParams) -> Page[T]:
    """One page of a list the platform returned whole."""
    return Page(
        items=items[page.offset : page.offset + page.limit],
        total=len(items),
        limit=page.limit,
        offset=page.offset,
    )


# ---------------------------------------------------------------- connections


@router.get("", summary="List connections (contributors: shared ones, name and type only)")
def list_connections(
    session: SessionDep, actor: Lister, page: PageDep, type: ConnectionType | None = None
) -> Page[AnyView]:
    rows, total = paginate(session, service.connection_query(actor=actor, type=type), page)
    items = service.views(session=session, connections=rows, actor=actor)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a connection with an API key or tokens")
def create_connection(
    body: ConnectionCreate, session: SessionDep, runtime: RuntimeDep, admin: Admin, request: Request
) -> ConnectionOut:
    connection = service.create(
        session=session, runtime=runtime, data=body, actor=admin, ip=client_ip(request)
    )
    return _out(session, connection.id, admin)


@router.post("/oauth/start", summary="Start the OAuth authorization of a new connection")
def start_oauth(body: OAuthStart, session: SessionDep, runtime: RuntimeDep, admin: Admin) -> OAuthStarted:
    return oauth_flow.start(session=session, runtime=runtime, draft=body, actor=admin)


@router.get(
    "/oauth/callback",
    status_code=status.HTTP_303_SEE_OTHER,
    response_class=RedirectResponse,
    summary="Where the platform sends the browser back; redirects to the connection's page",
)
def oauth_callback(
    session: SessionDep,
    runtime: RuntimeDep,
    admin: Admin,
    request: Request,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    error_description: Annotated[str | None, Query(max_length=2000)] = None,
) -> RedirectResponse:
    _release(session)
    try:
        authorized = oauth_flow.complete(
            runtime=runtime, actor_id=admin.id, state=state, code=code, error=error,
            error_description=error_description, ip=client_ip(request),
        )  # fmt: skip
    except SegmentSyncError as exc:
        if "authorization" in request.headers:  # a script: the JSON error
            raise
        # A person in a browser: back to the wizard, with the reason shown there.
        notices = list(request.session.get("flash", []))
        request.session["flash"] = [*notices, {"kind": "error", "message": exc.message, "code": exc.code}][
            -5:
        ]
        return RedirectResponse(UI_NEW_CONNECTION_PAGE, status_code=status.HTTP_303_SEE_OTHER)
    if authorized.pending is not None:  # the wizard's: steps 7 and 8, then Save makes it
        target = UI_PENDING_PAGE.format(token=authorized.pending)
    else:
        target = UI_CONNECTION_PAGE.format(id=authorized.connection_id)
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


@router.get("/{connection_id}", summary="Show a connection (contributors: name and type only)")
def get_connection(connection_id: int, session: SessionDep, actor: Lister) -> AnyView:
    connection = service.get(session=session, connection_id=connection_id, actor=actor)
    return service.view(session=session, connection=connection, actor=actor)


@router.patch("/{connection_id}", summary="Rename, change sharing or re-authenticate with a key or tokens")
def update_connection(
    connection_id: int,
    body: ConnectionUpdate,
    session: SessionDep,
    runtime: RuntimeDep,
    admin: Admin,
    request: Request,
) -> ConnectionOut:
    connection = service.get_for_admin(session=session, connection_id=connection_id, actor=admin)
    service.update(
        session=session, runtime=runtime, connection=connection, data=body, actor=admin, ip=client_ip(request)
    )
    return _out(session, connection_id, admin)


@router.post("/{connection_id}/oauth/start", summary="Re-authenticate a connection through OAuth")
def restart_oauth(connection_id: int, session: SessionDep, runtime: RuntimeDep, admin: Admin) -> OAuthStarted:
    connection = service.get_for_admin(session=session, connection_id=connection_id, actor=admin)
    return oauth_flow.start_reauthentication(
        session=session, runtime=runtime, connection=connection, actor=admin
    )


@router.post("/{connection_id}/export-user", summary="Add yourself as the export user")
def add_export_user(connection_id: int, session: SessionDep, admin: Admin, request: Request) -> ConnectionOut:
    connection = service.get_for_admin(session=session, connection_id=connection_id, actor=admin)
    service.add_export_user(session=session, connection=connection, actor=admin, ip=client_ip(request))
    return _out(session, connection_id, admin)


@router.post("/{connection_id}/verify", summary="Check the stored credentials against the platform")
def verify_connection(
    connection_id: int, session: SessionDep, runtime: RuntimeDep, admin: Admin
) -> VerifyOut:
    connection = service.get_for_admin(session=session, connection_id=connection_id, actor=admin)
    _release(session)
    account = lists.verify(runtime=runtime, connection=connection)
    with runtime.sessions() as fresh:
        return VerifyOut(
            connection=_out(fresh, connection_id, admin),
            account_id=account.account_id,
            account_name=account.name,
        )


@router.post("/{connection_id}/detach", summary="Detach exports (kept, with no connection)")
def detach_exports(
    connection_id: int, session: SessionDep, admin: Admin, request: Request, body: DetachRequest | None = None
) -> list[ExportRef]:
    connection = service.get_for_admin(session=session, connection_id=connection_id, actor=admin)
    detached = service.detach(
        session=session, connection=connection, actor=admin,
        export_ids=body.export_ids if body else None, ip=client_ip(request),
    )  # fmt: skip
    return [ExportRef(id=export.id, name=export.name) for export in detached]


@router.delete(
    "/{connection_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a connection (refused while exports use it: the answer lists them)",
)
def remove_connection(connection_id: int, session: SessionDep, admin: Admin, request: Request) -> Response:
    connection = service.get_for_admin(session=session, connection_id=connection_id, actor=admin)
    service.remove(session=session, connection=connection, actor=admin, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- what the connection sees


@router.get("/{connection_id}/lists", summary="The lists the connection can see (list picker)")
def list_lists(
    connection_id: int, session: SessionDep, runtime: RuntimeDep, actor: Lister, page: PageDep
) -> Page[ListOut]:
    connection = service.get(session=session, connection_id=connection_id, actor=actor)
    _release(session)
    return _page(lists.lists(runtime=runtime, connection=connection), page)


@router.get("/{connection_id}/lists/{list_id}", summary="One list's name and member count")
def get_list(
    connection_id: int, list_id: str, session: SessionDep, runtime: RuntimeDep, actor: Lister
) -> ListOut:
    connection = service.get(session=session, connection_id=connection_id, actor=actor)
    _release(session)
    return lists.describe(runtime=runtime, connection=connection, list_id=list_id)


@router.get("/{connection_id}/lists/{list_id}/custom-fields", summary="One list's custom fields")
def list_custom_fields(
    connection_id: int, list_id: str, session: SessionDep, runtime: RuntimeDep, actor: Lister, page: PageDep
) -> Page[FieldOut]:
    connection = service.get(session=session, connection_id=connection_id, actor=actor)
    _release(session)
    return _page(lists.custom_fields(runtime=runtime, connection=connection, list_id=list_id), page)
