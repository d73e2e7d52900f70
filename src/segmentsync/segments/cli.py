"""``segmentsync segments …``: create, list, show, edit, delete, refresh, preview and count segments.

A segment is a rule (``--rule``/``--rule-file``), a SQL query (``--sql FILE``, ``-`` for standard
input) or a dbt model (``--dbt-model NAME``, from the manifest set with ``segmentsync dbt set-manifest``).

Commands that change something act as ``--as EMAIL`` (default: the first active admin) and go
through the same service and policy table as the API.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from segmentsync import terminal
from segmentsync.db import transaction
from segmentsync.errors import Invalid
from segmentsync.segments import service
from segmentsync.segments.rules import Group, parse
from segmentsync.segments.schemas import RefreshOut, SegmentCreate, SegmentOut, SegmentUpdate
from segmentsync.terminal import AsUser, out, reported_errors

app = typer.Typer(no_args_is_help=True, help="Segments: named rules over profile columns.")
SegmentRef = Annotated[str, typer.Argument(help="the segment's name or id")]
RuleJson = Annotated[str | None, typer.Option("--rule", help="the rule as JSON")]
RuleFile = Annotated[Path | None, typer.Option("--rule-file", help="a file holding the rule as JSON")]
SqlFile = Annotated[
    str | None, typer.Option("--sql", help="a file holding the segment's SQL query ('-': standard input)")
]
DbtModel = Annotated[str | None, typer.Option("--dbt-model", help="the dbt model's name (in the manifest)")]
AsJson = terminal.Json


def _sql(file: str | None) -> str | None:
    if file is None:
        return None
    if file == "-":
        return sys.stdin.read()
    try:
        return Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"cannot read {file}: {exc}", field="sql") from None


def _rule(text: str | None, file: Path | None) -> Group | None:
    if text is not None and file is not None:
        raise Invalid("give the rule with --rule or --rule-file, not both")
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise Invalid(f"cannot read {file}: {exc}", field="rule_file") from None
    return None if text is None else parse(text)


def _print_json(data: Any) -> None:
    terminal.print_json(data)


def _segment_json(segment: Any) -> dict[str, Any]:
    return SegmentOut.model_validate(segment).model_dump(mode="json")


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="the segment's name (unique)")],
    rule: RuleJson = None,
    rule_file: RuleFile = None,
    sql: SqlFile = None,
    dbt_model: DbtModel = None,
    description: Annotated[str, typer.Option(help="what the segment is for")] = "",
    as_user: AsUser = None,
    as_json: AsJson = False,
) -> None:
    """Create a segment from a rule (JSON), a SQL query or a dbt model, checked before it is saved."""
    with terminal.open_runtime() as runtime, transaction(runtime.sessions) as session:
        group, query = _rule(rule, rule_file), _sql(sql)
        given = [option for option, value in (("a rule", group), ("--sql", query), ("--dbt-model", dbt_model))
                 if value is not None]  # fmt: skip
        if len(given) != 1:
            raise Invalid(
                "give the segment as one of --rule JSON, --rule-file FILE, --sql FILE (or -) or "
                "--dbt-model NAME" + (f", not {' and '.join(given)}" if given else ""),
                field="rules",
            )
        segment = service.create(
            session=session, source=runtime.profiles, actor=terminal.actor(session, as_user),
            segment_in=SegmentCreate(name=name, description=description, rules=group, sql=query,
                                     dbt_model=dbt_model),
        )  # fmt: skip
        if as_json:
            _print_json(_segment_json(segment))
            return
        text = SegmentOut.model_validate(segment).rule_text
        out.print(f"Created segment {segment.name!r} (id {segment.id}): {text}", highlight=False)


@app.command("list")
def list_(as_json: AsJson = False) -> None:
    """List the segments with their member counts as of their last refresh."""
    with terminal.open_runtime() as runtime, runtime.sessions() as session:
        segments = [SegmentOut.model_validate(s) for s in service.list_segments(session=session)]
    if as_json:
        _print_json([s.model_dump(mode="json") for s in segments])
        return
    grid = Table()
    for header in ("id", "name", "members", "last refresh", "rule"):
        grid.add_column(header, overflow="fold")
    for s in segments:
        members = (
            "error" if s.last_refresh_error else "—" if s.member_count is None else f"{s.member_count:,}"
        )
        when = f"{s.last_refresh_at:%Y-%m-%d %H:%M}" if s.last_refresh_at else "never"
        grid.add_row(str(s.id), s.name, members, when, s.rule_text)
    out.print(grid)


@app.command()
def show(segment: SegmentRef, as_json: AsJson = False) -> None:
    """Show a segment: its rule, counts, the exports using it and its recent refreshes."""
    with terminal.open_runtime() as runtime, runtime.sessions() as session:
        found = SegmentOut.model_validate(service.find(session=session, ref=segment))
        exports = service.exports_using(session=session, segment_id=found.id)
        refreshes = service.history(session=session, segment_id=found.id, limit=5)
        if as_json:
            _print_json(found.model_dump(mode="json") | {"exports": exports})
            return
        out.print(f"[bold]{found.name}[/bold] (id {found.id}) {found.description}")
        if found.kind == "sql":
            out.print("SQL:", highlight=False)
            out.print(found.sql or "", highlight=False, markup=False)
        else:
            out.print(f"Rule: {found.rule_text}", highlight=False)
        out.print(f"Members: {found.member_count if found.member_count is not None else 'not refreshed yet'}")
        if found.last_refresh_error:
            out.print(f"[red]Last refresh failed:[/red] {found.last_refresh_error}", highlight=False)
        out.print(f"Used by exports: {', '.join(exports) or 'none'}")
        for item in refreshes:
            result = item.error or f"{item.member_count:,} members"
            out.print(f"  refreshed {item.started_at:%Y-%m-%d %H:%M:%S} in {item.duration_ms} ms: {result}")


@app.command()
def edit(
    segment: SegmentRef,
    name: Annotated[str | None, typer.Option(help="new name")] = None,
    description: Annotated[str | None, typer.Option(help="new description")] = None,
    rule: RuleJson = None,
    rule_file: RuleFile = None,
    sql: SqlFile = None,
    dbt_model: DbtModel = None,
    as_user: AsUser = None,
    as_json: AsJson = False,
) -> None:
    """Change a segment's name, description, rule, SQL or dbt model."""
    with terminal.open_runtime() as runtime, transaction(runtime.sessions) as session:
        found = service.find(session=session, ref=segment)
        change = SegmentUpdate(
            name=name,
            description=description,
            rules=_rule(rule, rule_file),
            sql=_sql(sql),
            dbt_model=dbt_model,
        )
        updated = service.update(
            session=session, source=runtime.profiles, segment_id=found.id, segment_in=change,
            actor=terminal.actor(session, as_user),
        )  # fmt: skip
        if as_json:
            _print_json(_segment_json(updated))
            return
        text = SegmentOut.model_validate(updated).rule_text
        out.print(f"Saved segment {updated.name!r}: {text}", highlight=False)


@app.command()
def delete(
    segment: SegmentRef,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    as_user: AsUser = None,
    as_json: AsJson = False,
) -> None:
    """Delete a segment (refused while exports use it)."""
    with terminal.open_runtime() as runtime, transaction(runtime.sessions) as session:
        found = service.find(session=session, ref=segment)
        if not yes:
            typer.confirm(f"Delete segment {found.name!r}?", abort=True)
        service.delete(session=session, segment_id=found.id, actor=terminal.actor(session, as_user))
        if as_json:
            _print_json({"deleted": {"id": found.id, "name": found.name}})
            return
        out.print(f"Deleted segment {found.name!r}.", highlight=False)


@app.command()
def refresh(
    segments: Annotated[list[str] | None, typer.Argument(help="names or ids (none: give --all)")] = None,
    all_segments: Annotated[bool, typer.Option("--all", help="refresh every segment")] = False,
    as_user: AsUser = None,
    as_json: AsJson = False,
) -> None:
    """Count the members of segments now and store the counts (with history)."""
    if bool(segments) == all_segments:
        with reported_errors():
            raise Invalid("name the segments to refresh, or give --all (not both)")
    with terminal.open_runtime() as runtime, transaction(runtime.sessions) as session:
        ids = None if all_segments else [service.find(session=session, ref=ref).id for ref in segments or []]
        results = service.refresh_many(
            session=session, source=runtime.profiles, segment_ids=ids, actor=terminal.actor(session, as_user)
        )
    if as_json:
        _print_json([r.model_dump(mode="json") | {"ok": r.ok} for r in results])
    else:
        _print_refreshes(results)
    if any(not result.ok for result in results):
        raise typer.Exit(1)


def _print_refreshes(results: list[RefreshOut]) -> None:
    grid = Table()
    for header in ("segment", "members", "time", "error"):
        grid.add_column(header, overflow="fold")
    for r in results:
        members = "—" if r.member_count is None else f"{r.member_count:,}"
        grid.add_row(r.segment_name, members, f"{r.duration_ms} ms", r.error or "")
    out.print(grid)


@app.command()
def preview(
    segment: SegmentRef,
    limit: Annotated[int, typer.Option(help="how many members")] = 20,
    columns: Annotated[str | None, typer.Option(help="comma-separated columns (default: all)")] = None,
    as_json: AsJson = False,
) -> None:
    """Show the first members of a segment (ordered by the key)."""
    chosen = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    with terminal.open_runtime() as runtime, runtime.sessions() as session:
        found = service.find(session=session, ref=segment)
        result = service.preview(
            session=session, source=runtime.profiles, segment_id=found.id, columns=chosen, limit=limit
        )
    if as_json:
        _print_json(result.model_dump(mode="json")["rows"])
        return
    grid = Table(title=f"{found.name}: first {len(result.rows)} members")
    for column in result.columns:
        grid.add_column(column, overflow="fold")
    for row in result.rows:
        grid.add_row(*("" if row[c] is None else str(row[c]) for c in result.columns))
    out.print(grid)


@app.command()
def count(segment: SegmentRef, as_json: AsJson = False) -> None:
    """Count a segment's members now (without storing it; see refresh)."""
    with terminal.open_runtime() as runtime, runtime.sessions() as session:
        found = service.find(session=session, ref=segment)
        members = service.count(session=session, source=runtime.profiles, segment_id=found.id)
    if as_json:
        _print_json({"segment_id": found.id, "name": found.name, "member_count": members})
        return
    out.print(f"{found.name}: {members:,} members", highlight=False)
