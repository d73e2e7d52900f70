"""What every `segmentsync` command shares: the consoles, one-line errors, exit codes, the
runtime, `--as` and `--json`.

Output to a terminal wraps at its width; output to a pipe or a file is never cut short (tables
keep their full cells), so scripts can read it.

Every error ends the command with one line on standard error and a non-zero exit status, never a
traceback: :class:`RootGroup` catches what the commands raise (domain errors, usage errors, and
anything unexpected) in one place. With ``--json`` the line is a JSON object
``{"error": {"code", "message", "field"?, "exit_code"}}``. The exit statuses (``EXIT_*`` below) are
documented in ``docs/user-guide.md``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text
from sqlalchemy.orm import Session
from typer._click import exceptions as click  # Typer's own copy of Click, which it raises
from typer.core import TyperGroup

from segmentsync.auth.models import Role, User
from segmentsync.auth.service import get_user_by_email
from segmentsync.errors import NotFound, SegmentSyncError
from segmentsync.runtime import Runtime

log = logging.getLogger(__name__)

PIPE_WIDTH = 240

# Exit statuses of every command. 2 is Click's usage error; a run's outcome never reuses it.
EXIT_OK = 0
EXIT_ERROR = 1  # the command failed (the message says why)
EXIT_USAGE = 2  # a wrong option or argument (nothing was done)
EXIT_REJECTIONS = 3  # the run succeeded, but the platform refused some rows
EXIT_AWAITING_CONFIRMATION = 4  # the mirror guard stopped the run: `segmentsync runs confirm ID`
EXIT_FAILED = 5  # the run failed (or failed for now and waits for a retry)
EXIT_CANCELLED = 6  # the run was cancelled
EXIT_INTERRUPTED = 130  # Ctrl-C
DEBUG_VARIABLE = "SEGMENTSYNC_DEBUG"  # set to 1: unexpected errors keep their traceback


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else PIPE_WIDTH)


out = _console(stderr=False)
err = _console(stderr=True)

AsUser = Annotated[
    str | None,
    typer.Option(
        "--as",
        envvar="SEGMENTSYNC_AS",
        show_envvar=True,
        help="act as this user (default: the first active admin)",
    ),
]
Json = Annotated[
    bool,
    typer.Option(
        "--json", help="print JSON (and errors as a JSON object on standard error)", show_default=False
    ),
]


class _Mode:
    json = False  # the command line holds --json: errors are JSON objects too


def json_mode() -> bool:
    return _Mode.json


def print_json(data: Any) -> None:
    """``data`` as JSON on standard output (indented for people, plain JSON for programs)."""
    text = orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    sys.stdout.write(text.decode() + "\n")
    sys.stdout.flush()


def error_text(exc: SegmentSyncError | ValidationError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "input"
        return f"{where}: {first['msg']}"
    return exc.message + (f" (field: {exc.field})" if exc.field else "")


def report(
    message: str,
    *,
    code: str = "error",
    exit_code: int = EXIT_ERROR,
    field: str | None = None,
    details: dict[str, Any] | None = None,
    human: str | None = None,
) -> None:
    """One error on standard error: a red line (``human`` if given), or a JSON object in ``--json`` mode."""
    if json_mode():
        body: dict[str, Any] = {"code": code, "message": message, "exit_code": exit_code}
        if field:
            body["field"] = field
        if details:
            body["details"] = details
        sys.stderr.write(orjson.dumps({"error": body}, default=str).decode() + "\n")
        sys.stderr.flush()
        return
    err.print(Text.assemble(("error:", "red"), " ", human or message), highlight=False, soft_wrap=True)


def fail(exc: SegmentSyncError | ValidationError) -> typer.Exit:
    """Report the error (one line); the command exits with status 1 (no traceback)."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        report(error_text(exc), code="invalid", field=field)
    else:
        report(
            exc.message, code=exc.code, field=exc.field, details=exc.details or None, human=error_text(exc)
        )
    return typer.Exit(EXIT_ERROR)


def _json_requested(args: Sequence[str]) -> bool:
    words = list(args)
    if "--" in words:
        words = words[: words.index("--")]
    return "--json" in words


def _usage_text(exc: click.UsageError) -> str:
    where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
    return " ".join(exc.format_message().split()) + where


class RootGroup(TyperGroup):
    """The `segmentsync` group: every error becomes one line and an exit status, in one place."""

    def main(  # type: ignore[override]  # click's signature, with the keyword arguments it takes
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        before, _Mode.json = _Mode.json, _json_requested(argv)
        try:
            code = self._run(argv, prog_name, complete_var, extra)
        finally:  # the mode is this command line's: an in-process caller's next command starts without it
            _Mode.json = before
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(
        self, argv: list[str], prog_name: str | None, complete_var: str | None, extra: dict[str, Any]
    ) -> int:
        try:
            result = super().main(
                args=argv, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra
            )
        except click.UsageError as exc:
            report(_usage_text(exc), code="usage", exit_code=EXIT_USAGE)
            return EXIT_USAGE
        except typer.Abort:
            report("aborted", code="aborted")
            return EXIT_ERROR
        except click.ClickException as exc:
            report(" ".join(exc.format_message().split()), code="error", exit_code=exc.exit_code)
            return exc.exit_code
        except (SegmentSyncError, ValidationError) as exc:
            fail(exc)
            return EXIT_ERROR
        except KeyboardInterrupt:
            report("interrupted", code="interrupted", exit_code=EXIT_INTERRUPTED)
            return EXIT_INTERRUPTED
        except Exception as exc:  # anything else is our bug: one line, and the log has the traceback
            if os.environ.get(DEBUG_VARIABLE):
                raise
            log.debug("unexpected error", exc_info=True)
            text = " ".join(str(exc).split()) or "no message"
            report(
                f"unexpected {exc.__class__.__name__}: {text} (set {DEBUG_VARIABLE}=1 to see where)",
                code="internal",
            )
            return EXIT_ERROR
        return result if isinstance(result, int) else EXIT_OK


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
    if email is not None:
        return get_user_by_email(session=session, email=email)
    admin = session.scalar(
        sa.select(User).where(User.role == Role.ADMIN, User.is_active.is_(True)).order_by(User.id).limit(1)
    )
    if admin is None:
        raise NotFound("there is no active admin; create one with `segmentsync users create --role admin`")
    return admin
