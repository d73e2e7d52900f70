"""What every `segmentsync` command shares: the consoles, one-line errors, the runtime, `--as`.

Output to a terminal wraps at its width; output to a pipe or a file is never cut short (tables
keep their full cells), so scripts can read it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import sqlalchemy as sa
import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.orm import Session

from segmentsync.auth.models import Role, User
from segmentsync.errors import NotFound, SegmentSyncError
from segmentsync.runtime import Runtime

PIPE_WIDTH = 240


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else PIPE_WIDTH)


out = _console(stderr=False)
err = _console(stderr=True)

AsUser = Annotated[
    str | None, typer.Option("--as", help="act as this user (default: the first active admin)")
]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


def error_text(exc: SegmentSyncError | ValidationError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "input"
        return f"{where}: {first['msg']}"
    return exc.message + (f" (field: {exc.field})" if exc.field else "")


def fail(exc: SegmentSyncError | ValidationError) -> typer.Exit:
    """Print the error as one red line; the command exits with status 1 (no traceback)."""
    err.print(f"[red]error:[/red] {error_text(exc)}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


@contextmanager
def reported_errors() -> Iterator[None]:
    try:
        yield
    except (SegmentSyncError, ValidationError) as exc:
        raise fail(exc) from None


@contextmanager
def open_runtime() -> Iterator[Runtime]:
    """The runtime (migrations run on open); domain errors end the command cleanly."""
    with reported_errors():
        runtime = Runtime.open()
        try:
            yield runtime
        finally:
            runtime.close()


def actor(session: Session, email: str | None) -> User:
    """``--as EMAIL``, or the first active admin."""
    from segmentsync.auth.service import get_user_by_email

    if email is not None:
        return get_user_by_email(session=session, email=email)
    admin = session.scalar(
        sa.select(User).where(User.role == Role.ADMIN, User.is_active.is_(True)).order_by(User.id).limit(1)
    )
    if admin is None:
        raise NotFound("there is no active admin; create one with `segmentsync users create --role admin`")
    return admin
