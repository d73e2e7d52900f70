"""`segmentsync config export|plan|apply|schema`: the whole configuration as a YAML file in Git.

``plan`` and ``apply`` exit 0 when they succeed; with ``--detailed-exitcode`` (as in Terraform)
``plan`` exits 7 when there are changes, so that CI can tell "up to date" from "drift".
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from segmentsync.errors import Invalid
from segmentsync.terminal import AsUser, Json, actor, err, open_runtime, out, print_json, report

if TYPE_CHECKING:  # imported by the commands themselves: every other command starts without them
    from segmentsync.auth.models import User
    from segmentsync.config.apply import Plan
    from segmentsync.config.document import ConfigProblems
    from segmentsync.runtime import Runtime

app = typer.Typer(no_args_is_help=True, help="Configuration as code: export, plan and apply a YAML file.")

EXIT_CHANGES = 7  # `config plan --detailed-exitcode`: the file differs from the store
FileArg = Annotated[Path, typer.Argument(help="the YAML file ('-': standard input)", allow_dash=True)]
PruneOpt = Annotated[bool, typer.Option("--prune", help="also remove what a section of the file leaves out")]


def _read(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"cannot read {path}: {exc.__class__.__name__}: {exc}", field="file") from None


def _problems(exc: ConfigProblems, as_json: bool) -> typer.Exit:
    if as_json:
        report(exc.message, code=exc.code, details=exc.details)
    else:
        for problem in exc.problems:
            report(problem.text(), code=exc.code)
    return typer.Exit(1)


def _show(plan: Plan, *, applied: bool) -> None:
    if not plan.changes:
        out.print("No changes: the store matches the file.", highlight=False)
        return
    signs = {"create": "+", "update": "~", "remove": "-"}
    for change in plan.changes:
        out.print(f"{signs[change.action]} {change.kind} “{change.name}”: {change.action}", highlight=False)
        for name, (before, after) in change.fields.items():
            out.print(f"    {name}: {_short(before)} → {_short(after)}", highlight=False, soft_wrap=True)
    counts = {action: sum(c.action == action for c in plan.changes) for action in signs}
    verb = "Applied" if applied else "Plan"
    out.print(
        f"{verb}: {counts['create']} to create, {counts['update']} to update, {counts['remove']} to remove.",
        highlight=False,
    )


def _short(value: Any) -> str:
    """A value on one line: text as it is, unless it has several lines (a query): then quoted."""
    if value is None:
        return "—"
    if isinstance(value, str) and "\n" not in value:
        return value
    return orjson.dumps(value).decode()


@app.command("export")
def export_(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write to this file (default: standard output)")
    ] = None,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Write the whole configuration as YAML (secrets as ${ENV_VAR} references); admins."""
    # lazy: the config modules cost 0.04 s CPU of every command's start-up
    from segmentsync.config import document, state

    with open_runtime() as runtime, runtime.readers() as session:
        data = state.export_config(session, actor=actor(session, as_user))
    if as_json and output is None:
        print_json(data)
        return
    text = document.dump(data)
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")
    if as_json:
        print_json({"written": str(output)})
    else:
        err.print(f"wrote {output}", highlight=False)


@contextmanager
def _acting(as_user: str | None, as_json: bool) -> Iterator[tuple[Runtime, User]]:
    """The runtime and the acting admin; a file's problems end the command, one line each."""
    # lazy: the config modules cost 0.04 s CPU of every command's start-up
    from segmentsync.config.document import ConfigProblems

    with open_runtime() as runtime:
        with runtime.readers() as session:
            user = actor(session, as_user)
        try:
            yield runtime, user
        except ConfigProblems as exc:
            raise _problems(exc, as_json) from None


def _output(result: Plan, *, as_json: bool, applied: bool) -> None:
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        _show(result, applied=applied)


@app.command()
def plan(
    file: FileArg,
    prune: PruneOpt = False,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help=f"exit {EXIT_CHANGES} when there are changes")
    ] = False,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Show what applying the file would create, change and remove (nothing is written)."""
    # lazy: the config modules cost 0.04 s CPU of every command's start-up
    from segmentsync.config import apply as applying

    text = _read(file)
    with _acting(as_user, as_json) as (runtime, user):
        result = applying.plan(runtime=runtime, actor=user, text=text, prune=prune)
    _output(result, as_json=as_json, applied=False)
    if detailed_exitcode and result.changes:
        raise typer.Exit(EXIT_CHANGES)


@app.command()
def apply(
    file: FileArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    prune: PruneOpt = False,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Make the store match the file, in one transaction (idempotent; objects matched by name)."""
    # lazy: the config modules cost 0.04 s CPU of every command's start-up
    from segmentsync.config import apply as applying

    text = _read(file)
    with _acting(as_user, as_json) as (runtime, user):
        if not yes:
            preview = applying.plan(runtime=runtime, actor=user, text=text, prune=prune)
            if not preview.changes:
                _output(preview, as_json=as_json, applied=False)
                return
            _show(preview, applied=False)
            typer.confirm("Apply these changes?", abort=True, err=True)
        result = applying.apply(runtime=runtime, actor=user, text=text, prune=prune)
    _output(result, as_json=as_json, applied=True)


@app.command()
def schema(as_json: Json = False) -> None:
    """Print the JSON Schema of the configuration file (for editors and CI)."""
    # lazy: the config modules cost 0.04 s CPU of every command's start-up
    from segmentsync.config import document

    print_json(document.json_schema())
