"""``segmentsync dbt …``: set the dbt manifest, list its models, show one (admins set the manifest).

segmentsync dbt set-manifest path/to/project/target/manifest.json
segmentsync dbt models
segmentsync dbt show big_spenders
segmentsync segments create "Big spenders" --dbt-model big_spenders
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from segmentsync import terminal
from segmentsync.db import transaction
from segmentsync.dbt import manifest as dbt
from segmentsync.errors import Invalid
from segmentsync.segments import kinds
from segmentsync.segments import sql as sqlcheck
from segmentsync.terminal import AsUser, out

app = typer.Typer(no_args_is_help=True, help="dbt models as segments: the manifest and its models.")
AsJson = terminal.Json


@app.command("set-manifest")
def set_manifest(
    location: Annotated[
        str | None, typer.Argument(help="the path or http(s) URL of the project's target/manifest.json")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="forget the manifest")] = False,
    as_user: AsUser = None,
    as_json: AsJson = False,
) -> None:
    """Set where the dbt manifest is (read now to check it; re-read on every refresh)."""
    with terminal.open_runtime() as runtime, transaction(runtime.sessions) as session:
        if (location is None) == (not clear):
            raise Invalid("give the manifest's path or URL, or --clear (not both)", field="dbt_manifest")
        found = kinds.set_manifest(session=session, actor=terminal.actor(session, as_user), location=location)
        stored = kinds.options(session).dbt_manifest
    if as_json:
        terminal.print_json({"manifest": stored, "models": len(found.models) if found else 0})
        return
    if found is None:
        out.print("The dbt manifest is cleared; dbt segments cannot be refreshed until one is set.")
        return
    out.print(
        f"dbt manifest set: {stored} (dbt {found.dbt_version}, project {found.project}, "
        f"{len(found.models)} models)",
        highlight=False,
    )


@app.command()
def models(as_json: AsJson = False) -> None:
    """List the manifest's models with their relations."""
    with terminal.open_runtime() as runtime, runtime.sessions() as session:
        found = kinds.manifest(session)
        dialect = sqlcheck.dialect_of(runtime.profiles.engine)
    listing = found.listing()
    if as_json:
        terminal.print_json([_model_json(m, dialect) for m in listing])
        return
    grid = Table(title=f"dbt models ({found.location})")
    for header in ("model", "relation", "materialized", "description"):
        grid.add_column(header, overflow="fold")
    for m in listing:
        grid.add_row(m.name, m.relation(dialect), m.materialized, m.description)
    out.print(grid)


@app.command()
def show(model: Annotated[str, typer.Argument(help="the model's name")], as_json: AsJson = False) -> None:
    """Show a model: its relation, description, columns and tests."""
    with terminal.open_runtime() as runtime, runtime.sessions() as session:
        found = kinds.manifest(session).model(model)
        dialect = sqlcheck.dialect_of(runtime.profiles.engine)
    if as_json:
        terminal.print_json(_model_json(found, dialect))
        return
    out.print(f"[bold]{found.name}[/bold] ({found.unique_id}) → {found.relation(dialect)}", highlight=False)
    if found.description:
        out.print(found.description, highlight=False, markup=False)
    for column in found.columns:
        out.print(f"  {column.name}: {column.description}", highlight=False, markup=False)
    out.print(f"Tests: {', '.join(found.tests) or 'none'}", highlight=False)


def _model_json(model: dbt.Model, dialect: str) -> dict[str, object]:
    return {
        "name": model.name,
        "package": model.package,
        "unique_id": model.unique_id,
        "relation": model.relation(dialect),
        "materialized": model.materialized,
        "description": model.description,
        "columns": [
            {"name": c.name, "description": c.description, "data_type": c.data_type} for c in model.columns
        ],
        "tests": model.tests,
    }
