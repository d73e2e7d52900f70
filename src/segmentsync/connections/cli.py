"""`segmentsync connections …`: the connection setup from the command line.

Secrets are read from standard input (never from arguments, which other users can see in the
process list) and never printed. Commands act as ``--as EMAIL`` (default: the first active admin)
and go through the same services and policy table as the API.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import SecretStr
from rich.table import Table
from sqlalchemy.orm import Session

from segmentsync import terminal
from segmentsync.auth.models import User
from segmentsync.connections import lists, oauth_flow, service
from segmentsync.connections.models import Connection, ConnectionType
from segmentsync.connections.schemas import (
    CONSENT_NOTICE,
    ApiKeyAuth,
    ConnectionCreate,
    ConnectionOut,
    ConnectionUpdate,
    OAuthStart,
    TokenAuth,
)
from segmentsync.db import transaction
from segmentsync.errors import Invalid
from segmentsync.runtime import Runtime
from segmentsync.terminal import AsUser, Json, err, out, print_json

app = typer.Typer(no_args_is_help=True, help="Connections to Campaign Monitor and Constant Contact accounts.")
T = TypeVar("T")
NameOrId = Annotated[str, typer.Argument(help="the connection's display name or id")]


# ---------------------------------------------------------------- plumbing


def _find(session: Session, key: str, actor: User) -> Connection:
    return service.find(session=session, key=key, actor=actor)


def _in_transaction(runtime: Runtime, as_user: str | None, work: Callable[[Session, User], T]) -> T:
    with transaction(runtime.sessions) as session:
        return work(session, terminal.actor(session, as_user))


def _stdin_secret(what: str) -> str:
    if sys.stdin.isatty():
        err.print(f"{what} (input hidden, then Enter):")

        return getpass.getpass("")
    return sys.stdin.read().strip()


def _auth_from_stdin(*, api_key: bool, tokens: bool, client_id: str | None) -> ApiKeyAuth | TokenAuth | None:
    if api_key and tokens:
        raise Invalid("choose either --api-key-stdin or --tokens-stdin")
    if api_key:
        if not client_id:
            raise Invalid("--api-key-stdin needs --client-id (the Campaign Monitor client ID)")
        return ApiKeyAuth(api_key=SecretStr(_stdin_secret("API key")), client_id=client_id)
    if tokens:
        raw: dict[str, Any] = json.loads(_stdin_secret("tokens as JSON"))
        if client_id:
            raw.setdefault("client_id", client_id)
        return TokenAuth.model_validate({**raw, "method": "oauth_tokens"})
    return None


def _print(view: ConnectionOut | Any, as_json: bool) -> None:
    if as_json:
        print_json(view.model_dump(mode="json"))
        return
    for key, value in view.model_dump(mode="json").items():
        out.print(f"[bold]{key}[/bold]: {value}", highlight=False)


# ---------------------------------------------------------------- commands


@app.command("list")
def list_(
    type: Annotated[ConnectionType | None, typer.Option(help="only this type")] = None,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """List the connections you may see."""
    with terminal.open_runtime() as runtime:

        def work(session: Session, actor: User) -> list[Any]:
            rows = list(session.scalars(service.connection_query(actor=actor, type=type)))
            return service.views(session=session, connections=rows, actor=actor)

        shown = _in_transaction(runtime, as_user, work)
    if as_json:
        print_json([v.model_dump(mode="json") for v in shown])
        return
    table = Table("id", "name", "type", "status", "export user", "exports")
    for view in shown:
        full = isinstance(view, ConnectionOut)
        table.add_row(
            str(view.id), view.name, view.type.value,
            view.status.value if full else "", view.export_user.email if full and view.export_user else "",
            str(len(view.exports)) if full else "",
        )  # fmt: skip
    out.print(table)


@app.command()
def show(key: NameOrId, as_user: AsUser = None, as_json: Json = False) -> None:
    """Show a connection (never its secrets)."""
    with terminal.open_runtime() as runtime:
        view = _in_transaction(
            runtime, as_user,
            lambda s, a: service.view(session=s, connection=_find(s, key, a), actor=a),
        )  # fmt: skip
    _print(view, as_json)


@app.command()
def create(
    type: Annotated[ConnectionType, typer.Option(help="the platform")],
    name: Annotated[str, typer.Option(help="display name (unique)")],
    agree: Annotated[bool, typer.Option("--agree", help=f"I agree: {CONSENT_NOTICE}")] = False,
    shared: Annotated[bool, typer.Option("--shared", help="contributors may use it too")] = False,
    export_user: Annotated[bool, typer.Option(help="add yourself as export user")] = True,
    api_key_stdin: Annotated[bool, typer.Option("--api-key-stdin", help="read a CM API key")] = False,
    tokens_stdin: Annotated[
        bool, typer.Option("--tokens-stdin", help='read {"access_token","refresh_token",…} JSON')
    ] = False,
    client_id: Annotated[str | None, typer.Option(help="Campaign Monitor client ID")] = None,
    api_url: Annotated[str | None, typer.Option(help="API base URL override (sandbox)")] = None,
    oauth_url: Annotated[str | None, typer.Option(help="OAuth base URL override (sandbox)")] = None,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Create a connection with an API key or OAuth tokens (verified before it is saved)."""
    with terminal.open_runtime() as runtime:
        auth = _auth_from_stdin(api_key=api_key_stdin, tokens=tokens_stdin, client_id=client_id)
        if auth is None:
            raise Invalid("give --api-key-stdin or --tokens-stdin, or use `connections oauth-url`")
        data = ConnectionCreate.model_validate({
            "type": type, "name": name, "consent": agree, "shared_with_contributors": shared,
            "add_me_as_export_user": export_user, "auth": auth, "api_url": api_url, "oauth_url": oauth_url,
        })  # fmt: skip

        def work(session: Session, actor: User) -> Any:
            connection = service.create(session=session, runtime=runtime, data=data, actor=actor)
            return service.view(session=session, connection=connection, actor=actor)

        _print(_in_transaction(runtime, as_user, work), as_json)


@app.command("oauth-url")
def oauth_url_(
    type: Annotated[ConnectionType | None, typer.Option(help="the platform (new connection)")] = None,
    name: Annotated[str | None, typer.Option(help="display name (new connection)")] = None,
    agree: Annotated[bool, typer.Option("--agree", help=f"I agree: {CONSENT_NOTICE}")] = False,
    shared: Annotated[bool, typer.Option("--shared", help="contributors may use it too")] = False,
    export_user: Annotated[bool, typer.Option(help="add yourself as export user")] = True,
    reauthenticate: Annotated[
        str | None, typer.Option(help="re-authenticate this connection instead")
    ] = None,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Print the URL to open in the browser (signed in as the same user) to authorize with OAuth."""
    with terminal.open_runtime() as runtime:

        def work(session: Session, actor: User) -> Any:
            if reauthenticate is not None:
                connection = _find(session, reauthenticate, actor)
                return oauth_flow.start_reauthentication(
                    session=session, runtime=runtime, connection=connection, actor=actor
                )
            if type is None or name is None:
                raise Invalid("give --type and --name for a new connection, or --reauthenticate NAME")
            draft = OAuthStart(
                type=type, name=name, consent=agree, shared_with_contributors=shared,
                add_me_as_export_user=export_user,
            )  # fmt: skip
            return oauth_flow.start(session=session, runtime=runtime, draft=draft, actor=actor)

        started = _in_transaction(runtime, as_user, work)
    if as_json:
        print_json(started.model_dump(mode="json"))
        return
    err.print(f"Open this URL within 10 minutes; the platform returns to {started.redirect_uri}")
    out.print(started.authorize_url, highlight=False, soft_wrap=True)


@app.command()
def edit(
    key: NameOrId,
    name: Annotated[str | None, typer.Option(help="new display name")] = None,
    shared: Annotated[bool | None, typer.Option("--shared/--admins-only", help="who can use it")] = None,
    api_key_stdin: Annotated[
        bool, typer.Option("--api-key-stdin", help="re-authenticate: CM API key")
    ] = False,
    tokens_stdin: Annotated[
        bool, typer.Option("--tokens-stdin", help="re-authenticate: tokens JSON")
    ] = False,
    client_id: Annotated[str | None, typer.Option(help="Campaign Monitor client ID")] = None,
    add_me_as_export_user: Annotated[bool, typer.Option("--add-me-as-export-user")] = False,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Rename, change who can use it, re-authenticate, or add yourself as export user."""
    with terminal.open_runtime() as runtime:
        auth = _auth_from_stdin(api_key=api_key_stdin, tokens=tokens_stdin, client_id=client_id)
        data = ConnectionUpdate(name=name, shared_with_contributors=shared, auth=auth)

        def work(session: Session, actor: User) -> Any:
            connection = _find(session, key, actor)
            service.update(session=session, runtime=runtime, connection=connection, data=data, actor=actor)
            if add_me_as_export_user:
                service.add_export_user(session=session, connection=connection, actor=actor)
            return service.view(session=session, connection=connection, actor=actor)

        _print(_in_transaction(runtime, as_user, work), as_json)


@app.command()
def remove(key: NameOrId, as_user: AsUser = None, as_json: Json = False) -> None:
    """Remove a connection (refused while exports use it; detach or remove them first)."""
    with terminal.open_runtime() as runtime:
        _in_transaction(
            runtime, as_user,
            lambda s, a: service.remove(session=s, connection=_find(s, key, a), actor=a),
        )  # fmt: skip
    if as_json:
        print_json({"removed": key})
        return
    out.print(f"removed connection {key}", highlight=False)


@app.command()
def detach(
    key: NameOrId,
    export: Annotated[
        list[int] | None, typer.Option(help="export id to detach (repeatable; default all)")
    ] = None,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Detach exports from a connection: they are kept, inactive, with no connection."""
    with terminal.open_runtime() as runtime:
        names = _in_transaction(
            runtime, as_user,
            lambda s, a: [e.name for e in service.detach(
                session=s, connection=_find(s, key, a), actor=a, export_ids=export or None
            )],
        )  # fmt: skip
    if as_json:
        print_json({"detached": names})
        return
    out.print(f"detached {len(names)} export(s): {', '.join(names) or '-'}", highlight=False)


@app.command()
def verify(key: NameOrId, as_user: AsUser = None, as_json: Json = False) -> None:
    """Check the stored credentials against the platform."""
    with terminal.open_runtime() as runtime:

        def find(session: Session, actor: User) -> Connection:
            return service.get_for_admin(
                session=session, connection_id=_find(session, key, actor).id, actor=actor
            )

        connection = _in_transaction(runtime, as_user, find)
        account = lists.verify(runtime=runtime, connection=connection)
    if as_json:
        print_json({"ok": True, "account_id": account.account_id, "account_name": account.name})
        return
    out.print(f"ok: {account.name} ({account.account_id})", highlight=False)


@app.command("lists")
def lists_(key: NameOrId, as_user: AsUser = None, as_json: Json = False) -> None:
    """The lists the connection sees on its platform: ID, name and member count (the list picker)."""
    with terminal.open_runtime() as runtime:
        connection = _in_transaction(
            runtime, as_user, lambda s, a: service.get(session=s, connection_id=_find(s, key, a).id, actor=a)
        )
        found = lists.lists(runtime=runtime, connection=connection)
    if as_json:
        print_json([item.model_dump(mode="json") for item in found])
        return
    table = Table("list id", "name", "members")
    for item in found:
        table.add_row(item.list_id, item.name, "" if item.member_count is None else f"{item.member_count:,}")
    out.print(table)


@app.command("rotate-secrets")
def rotate_secrets(as_user: AsUser = None, as_json: Json = False) -> None:
    """Re-encrypt every stored secret with the newest key of SEGMENTSYNC_SECRET_KEY."""
    with terminal.open_runtime() as runtime:
        count = _in_transaction(
            runtime, as_user, lambda s, a: service.rotate_secrets(session=s, runtime=runtime, actor=a)
        )
    if as_json:
        print_json({"re_encrypted": count})
        return
    out.print(f"re-encrypted {count} secret(s) with the newest key")
