"""``segmentsync profiles load|generate|show``: fill and inspect the profile store."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from segmentsync.errors import Invalid
from segmentsync.profiles import store
from segmentsync.profiles.generate import generate as make
from segmentsync.profiles.load import LoadMode, load_file
from segmentsync.profiles.source import ProfileSource, redact
from segmentsync.settings import get_settings
from segmentsync.terminal import Json, err, out, print_json, reported_errors

app = typer.Typer(no_args_is_help=True, help="The profile source: load, generate and inspect profiles.")

TableOption = Annotated[
    str | None,
    typer.Option(
        "--table",
        help="profile table (default: 'profiles')",
        envvar="SEGMENTSYNC_PROFILES_TABLE",
        show_envvar=True,
    ),
]


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(), console=err, transient=True,
    )  # fmt: skip


def _one_char(value: str | None) -> str | None:
    if value is not None and len(value) != 1:
        raise typer.BadParameter(f"{value!r} is not one character (e.g. ',' or ';' or a tab)")
    return value


@app.command()
def load(
    file: Annotated[
        Path, typer.Argument(help="CSV, Parquet or JSON lines file (.csv, .parquet, .jsonl, .gz)")
    ],
    table: TableOption = None,
    key: Annotated[
        str | None,
        typer.Option(
            help="unique key column (default: profile_id)",
            envvar="SEGMENTSYNC_PROFILES_KEY",
            show_envvar=True,
        ),
    ] = None,
    mode: Annotated[str, typer.Option(help="replace the table, or append new profiles to it")] = "replace",
    file_format: Annotated[str | None, typer.Option("--format", help="csv, parquet or jsonl")] = None,
    encoding: Annotated[str, typer.Option(help="CSV encoding: utf-8, utf-16 or latin-1")] = "utf-8",
    delimiter: Annotated[
        str | None, typer.Option(help="CSV delimiter: one character (default: guessed)", callback=_one_char)
    ] = None,
    scan_all: Annotated[bool, typer.Option(help="guess column types from the whole file")] = False,
    as_json: Json = False,
) -> None:
    """Load profiles from a file into the embedded DuckDB store (the old table stays if it fails)."""
    with reported_errors():
        settings = get_settings()
        try:
            load_mode = LoadMode(mode)
        except ValueError:
            raise typer.BadParameter("use replace or append", param_hint="--mode") from None
        with _bar() as bar:
            task = bar.add_task(f"reading {file.name}", total=100)

            def progress(phase: str, fraction: float | None) -> None:
                bar.update(task, description=f"{phase} {file.name}", completed=100 * (fraction or 0))

            result = load_file(
                store.embedded_path(settings), file, table=table or settings.profiles_table,
                key=key or settings.profiles_key, mode=load_mode, file_format=file_format,
                encoding=encoding, delimiter=delimiter, scan_all=scan_all, progress=progress,
            )  # fmt: skip
    if as_json:
        print_json(dataclasses.asdict(result))
        return
    out.print(
        f"Loaded {result.rows:,} profiles into {result.table!r} ({result.mode.value}) in "
        f"{result.seconds:.1f} s; the table now holds {result.total_rows:,}."
    )


@app.command()
def generate(
    rows: Annotated[int, typer.Option(help="how many profiles")] = 10_000,
    seed: Annotated[int, typer.Option(help="same seed, same profiles")] = 42,
    table: TableOption = None,
    as_of: Annotated[
        str | None, typer.Option(help="date the profiles' dates are relative to (default: today)")
    ] = None,
    as_json: Json = False,
) -> None:
    """Replace the profile table with realistic synthetic profiles (for demos, tests, benchmarks)."""
    with reported_errors():
        settings = get_settings()
        try:
            day = date.fromisoformat(as_of) if as_of else None
        except ValueError:
            raise Invalid(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)", field="as_of") from None
        with _bar() as bar:
            task = bar.add_task("generating profiles", total=rows)
            result = make(
                store.embedded_path(settings), rows=rows, seed=seed, as_of=day,
                table=table or settings.profiles_table,
                progress=lambda done, _total: bar.update(task, completed=done),
            )  # fmt: skip
    if as_json:
        print_json(dataclasses.asdict(result))
        return
    out.print(f"Generated {result.rows:,} profiles into {result.table!r} in {result.seconds:.1f} s.")


@app.command()
def show(table: TableOption = None, as_json: Json = False) -> None:
    """Print the profile source, its table's columns (with their types) and the row count."""
    with reported_errors():
        settings = get_settings()
        if table:
            settings.profiles_table = table
        source = ProfileSource.from_settings(settings)
        try:
            described = source.describe()
            count = source.row_count()
        finally:
            source.close()
    if as_json:
        print_json(
            {
                "source": redact(source.url), "table": source.table_name, "key": source.key, "rows": count,
                "columns": [{"name": n, "engine_type": e, "type": k.value} for n, e, k in described],
            }
        )  # fmt: skip
        return
    grid = Table(title=f"{source.table_name} — {count:,} profiles, key {source.key!r}")
    for header in ("column", "engine type", "segment type"):
        grid.add_column(header)
    for name, engine_type, kind in described:
        grid.add_row(name + (" (key)" if name == source.key else ""), engine_type, kind.value)
    out.print(f"Profile source: {redact(source.url)}", highlight=False)
    out.print(grid)
