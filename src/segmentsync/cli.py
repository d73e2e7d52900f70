"""The `segmentsync` command line: one Typer app assembled from each domain's commands.

Each domain keeps its commands in its own ``cli.py`` (``profiles/cli.py``, ``exports/cli.py`` …)
and those call services only.
"""

from __future__ import annotations

import gc
from importlib import import_module
from typing import Annotated

import typer
from pydantic import ValidationError

from segmentsync import __version__
from segmentsync.lean import refuse_pandas
from segmentsync.profiles.source import engine_name
from segmentsync.settings import Settings
from segmentsync.terminal import RootGroup, print_json

ENVIRONMENT = """Settings come from environment variables: SEGMENTSYNC_DATA_DIR (default ~/.segmentsync),
SEGMENTSYNC_DATABASE_URL (default: SQLite in the data dir), SEGMENTSYNC_PROFILES_URL,
SEGMENTSYNC_SECRET_KEY, SEGMENTSYNC_AS (the user commands act as), SEGMENTSYNC_DEBUG=1 (tracebacks
of unexpected errors); docs/operations.md lists the settings, docs/cli.md the conventions.

--json prints JSON (errors too, on standard error). Exit status: 0 ok, 1 error, 2 usage error,
3 run succeeded with rejections, 4 run awaiting confirmation, 5 run failed, 6 run cancelled,
7 config plan --detailed-exitcode found changes, 130 interrupted."""

app = typer.Typer(
    cls=RootGroup,
    no_args_is_help=True,
    add_completion=True,
    help="Send customer segments to email platforms.",
    epilog=ENVIRONMENT,
    rich_markup_mode=None,
)

# (module, attribute, group name or None to add the module's commands at the top level)
SUBCOMMANDS: tuple[tuple[str, str | None], ...] = (
    ("segmentsync.sandbox.cli", None),  # sandbox
    ("segmentsync.profiles.cli", "profiles"),
    ("segmentsync.segments.cli", "segments"),
    ("segmentsync.dbt.cli", "dbt"),
    ("segmentsync.auth.cli", "users"),
    ("segmentsync.connections.cli", "connections"),
    ("segmentsync.exports.cli", "exports"),
    ("segmentsync.exports.runs_cli", "runs"),
    ("segmentsync.scheduling.cli", None),  # serve, worker, schedule
    ("segmentsync.quickstart", None),  # quickstart
    ("segmentsync.config.cli", "config"),
    ("segmentsync.notifications.cli", "webhooks"),
    ("segmentsync.notifications.alerts_cli", "alerts"),
)


@app.callback()
def _root() -> None:
    """segmentsync: send customer segments to Campaign Monitor and Constant Contact."""


@app.command()
def version(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Print the version."""
    if as_json:
        print_json({"version": __version__})
    else:
        typer.echo(__version__)


def _register() -> None:
    for module_name, group in SUBCOMMANDS:
        try:
            module = import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # that domain has no commands yet
                continue
            raise
        sub: typer.Typer = module.app
        if group is None:
            for command in sub.registered_commands:
                app.registered_commands.append(command)
            for group_info in sub.registered_groups:
                app.registered_groups.append(group_info)
        else:
            app.add_typer(sub, name=group)


_register()


def main() -> None:
    # The cyclic garbage collector would otherwise walk every object of the ~1,000 imported
    # modules again and again: once during a run's full collections, and at exit, where
    # finalisation took 0.3-0.6 s of each command here. Frozen objects are left out of both;
    # nothing is lost (the modules live as long as the process, and the OS frees the rest).
    gc.freeze()
    _refuse_pandas_with_duckdb_profiles()
    try:
        app()
    finally:
        gc.freeze()


def _refuse_pandas_with_duckdb_profiles() -> None:
    """No pandas in this process when the profile source is DuckDB (see ``segmentsync.lean``)."""
    try:
        url = Settings().resolved_profiles_url
    except ValidationError:  # the command itself reports broken settings
        return
    if engine_name(url) == "duckdb":
        refuse_pandas()
