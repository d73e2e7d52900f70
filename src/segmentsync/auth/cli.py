"""`segmentsync users …`: manage users and API tokens from the shell (no sign-in needed).

Whoever can run this command can read the data dir anyway; changes are audited with the actor
"system". The first admin is created here (or by ``segmentsync quickstart``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from segmentsync.auth import service
from segmentsync.auth.models import Role, User
from segmentsync.db import transaction
from segmentsync.errors import SegmentSyncError
from segmentsync.runtime import Runtime
from segmentsync.terminal import Json, err, fail, out, print_json

app = typer.Typer(no_args_is_help=True, help="Users, roles and API tokens.")

EmailArg = Annotated[str, typer.Argument(help="the user's email (their sign-in name)")]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="read the password from standard input instead of generating one"),
]


@contextmanager
def _store() -> Iterator[tuple[Runtime, Session]]:
    """The runtime (migrated on open) and one transaction; domain errors end the command cleanly."""
    runtime = Runtime.open()
    try:
        with transaction(runtime.sessions) as session:
            yield runtime, session
    except SegmentSyncError as exc:
        raise fail(exc) from exc
    finally:
        runtime.close()


def _user_json(user: User, **more: Any) -> dict[str, Any]:
    return {
        "id": user.id, "email": user.email, "name": user.name, "role": user.role.value,
        "is_active": user.is_active, "last_login_at": user.last_login_at, **more,
    }  # fmt: skip


def _read_password() -> str:
    return sys.stdin.readline().rstrip("\r\n")


@app.command()
def create(
    email: EmailArg,
    role: Annotated[Role, typer.Option(help="what the user may do")] = Role.VIEWER,
    name: Annotated[str, typer.Option(help="display name")] = "",
    password_stdin: PasswordStdin = False,
    as_json: Json = False,
) -> None:
    """Create a user; without --password-stdin a password is generated and printed once."""
    password = _read_password() if password_stdin else service.generate_password()
    with _store() as (_, session):
        user = service.create_user(
            session=session, email=email, role=role, name=name, password=password, actor=None
        )
    if as_json:
        print_json(_user_json(user, **({} if password_stdin else {"password": password})))
        return
    out.print(f"created {user.email} ({user.role.value})")
    if not password_stdin:
        out.print(f"password (shown once): {password}", highlight=False, soft_wrap=True)


@app.command("list")
def list_users(
    role: Annotated[Role | None, typer.Option(help="only users with this role")] = None,
    as_json: Json = False,
) -> None:
    """List users with their role and state."""
    with _store() as (_, session):
        users = list(session.scalars(service.user_query(role=role)))
        exports = service.export_user_of(session=session, user_ids=[user.id for user in users])
    if as_json:
        print_json([_user_json(user, export_user_of=exports[user.id]) for user in users])
        return
    table = Table("id")
    table.add_column("email", no_wrap=True)  # the one column a reader must see whole
    for header in ("name", "role", "active", "last sign-in", "export user of"):
        table.add_column(header)
    for user in users:
        last = user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "never"
        table.add_row(
            str(user.id),
            user.email,
            user.name,
            user.role.value,
            "yes" if user.is_active else "no",
            last,
            ", ".join(exports[user.id]),
        )
    out.print(table)


@app.command("set-role")
def set_role(
    email: EmailArg, role: Annotated[Role, typer.Argument(help="the new role")], as_json: Json = False
) -> None:
    """Change a user's role (the last active admin cannot be demoted)."""
    with _store() as (_, session):
        user = service.get_user_by_email(session=session, email=email)
        service.set_role(session=session, user=user, role=role, actor=None)
        _warn_export_user(session, user)
        shown = _user_json(user)
    _done(shown, f"{user.email} is now {role.value}", as_json)


@app.command()
def deactivate(email: EmailArg, as_json: Json = False) -> None:
    """Deactivate a user: sign-in, sessions and API tokens stop working (nothing is deleted)."""
    with _store() as (_, session):
        user = service.get_user_by_email(session=session, email=email)
        service.deactivate(session=session, user=user, actor=None)
        _warn_export_user(session, user)
        shown = _user_json(user)
    _done(shown, f"{user.email} is deactivated", as_json)


@app.command()
def activate(email: EmailArg, as_json: Json = False) -> None:
    """Reactivate a deactivated user."""
    with _store() as (_, session):
        user = service.get_user_by_email(session=session, email=email)
        service.reactivate(session=session, user=user, actor=None)
        shown = _user_json(user)
    _done(shown, f"{user.email} is active", as_json)


@app.command("set-password")
def set_password(email: EmailArg, password_stdin: PasswordStdin = False, as_json: Json = False) -> None:
    """Set a user's password; without --password-stdin one is generated and printed once."""
    password = _read_password() if password_stdin else service.generate_password()
    with _store() as (_, session):
        user = service.get_user_by_email(session=session, email=email)
        service.set_password(session=session, user=user, new_password=password, actor=None)
    if as_json:
        print_json({"email": user.email, **({} if password_stdin else {"password": password})})
        return
    out.print(f"password of {user.email} changed")
    if not password_stdin:
        out.print(f"password (shown once): {password}", highlight=False, soft_wrap=True)


@app.command()
def token(
    email: EmailArg,
    name: Annotated[str, typer.Option(help="what the token is for")] = "cli",
    as_json: Json = False,
) -> None:
    """Create an API token for a user and print it (once: only its hash is stored)."""
    with _store() as (runtime, session):
        user = service.get_user_by_email(session=session, email=email)
        row, secret = service.create_api_token(
            session=session, user=user, name=name, actor=None, now=runtime.clock()
        )
    if as_json:
        print_json(
            {"id": row.id, "name": row.name, "prefix": row.prefix, "email": user.email, "token": secret}
        )
        return
    # Alone on stdout, so that scripts can capture it: TOKEN=$(segmentsync users token …)
    typer.echo(secret)
    typer.echo(f"token {row.id} ({row.prefix}…) for {user.email}; it is not shown again", err=True)


@app.command()
def tokens(email: EmailArg, as_json: Json = False) -> None:
    """List a user's API tokens (never the tokens themselves)."""
    with _store() as (_, session):
        user = service.get_user_by_email(session=session, email=email)
        rows = list(session.scalars(service.token_query(user_id=user.id, include_revoked=True)))
    if as_json:
        print_json(
            [
                {
                    "id": row.id, "name": row.name, "prefix": row.prefix, "created_at": row.created_at,
                    "last_used_at": row.last_used_at, "revoked_at": row.revoked_at,
                }
                for row in rows
            ]
        )  # fmt: skip
        return
    table = Table("id", "name", "prefix", "created", "last used", "revoked")
    for row in rows:
        table.add_row(
            str(row.id),
            row.name,
            row.prefix + "…",
            f"{row.created_at:%Y-%m-%d %H:%M}",
            f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never",
            f"{row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "",
        )
    out.print(table)


@app.command("revoke-token")
def revoke_token(
    token_id: Annotated[int, typer.Argument(help="the token's id (see `users tokens`)")],
    as_json: Json = False,
) -> None:
    """Revoke an API token: it stops working at once."""
    with _store() as (runtime, session):
        row = service.get_api_token(session=session, token_id=token_id)
        service.revoke_api_token(session=session, token=row, actor=None, now=runtime.clock())
    _done(
        {"id": token_id, "prefix": row.prefix, "revoked": True},
        f"token {token_id} ({row.prefix}…) is revoked",
        as_json,
    )


def _done(data: dict[str, Any], text: str, as_json: bool) -> None:
    if as_json:
        print_json(data)
    else:
        out.print(text)


def _warn_export_user(session: Session, user: User) -> None:
    names = service.export_user_of(session=session, user_ids=[user.id])[user.id]
    if names and service.export_user_problem(user):
        err.print(
            f"[yellow]warning:[/yellow] runs on {', '.join(names)} will fail until another admin "
            "adds themselves as export user"
        )
