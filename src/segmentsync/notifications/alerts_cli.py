"""`segmentsync alerts …`: an export's alert rules and alert e-mail addresses (as ``--as`` or the first admin)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from segmentsync.exports import records
from segmentsync.notifications import alerts
from segmentsync.notifications.cli import as_actor
from segmentsync.notifications.models import AlertKind
from segmentsync.terminal import AsUser, Json, out, print_json

app = typer.Typer(no_args_is_help=True, help="An export's alert rules and alert e-mail addresses.")


def _alerts_json(session: Session, export_id: int) -> dict[str, Any]:
    return {
        "rules": [
            {**s.as_dict(), "changed_at": s.changed_at.isoformat() if s.changed_at else None}
            for s in alerts.rules_of(session, export_id)
        ],
        "emails": alerts.recipients_of(session, export_id),
    }


@app.command("show")
def show_alerts(
    export: Annotated[str, typer.Argument(help="the export's name or id")],
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """The export's alert rules (on/off, threshold, whether it holds now) and alert addresses."""
    with as_actor(as_user) as (_, session, user):
        found = records.find(session=session, key=export, actor=user)
        data = _alerts_json(session, found.id)
    _print_alerts(data, as_json)


def _print_alerts(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(data)
        return
    table = Table("rule", "on", "threshold", "state", "what it last said")
    for r in data["rules"]:
        threshold = "" if r["threshold"] is None else f"{r['threshold']:g} {r['unit']}"
        table.add_row(r["kind"], "yes" if r["enabled"] else "no", threshold,
                      "TRIGGERED" if r["holding"] else "ok", r["message"] or "")  # fmt: skip
    out.print(table)
    out.print("alert e-mail also to: " + (", ".join(data["emails"]) or "(admins only)"), highlight=False)


@app.command("set")
def set_alerts(
    export: Annotated[str, typer.Argument(help="the export's name or id")],
    on: Annotated[list[AlertKind] | None, typer.Option("--on", help="switch a rule on (repeat)")] = None,
    off: Annotated[list[AlertKind] | None, typer.Option("--off", help="switch a rule off (repeat)")] = None,
    rejected_percent: Annotated[
        float | None, typer.Option(help="rejected rows over this % of the rows sent")
    ] = None,
    stale_hours: Annotated[float | None, typer.Option(help="no successful run for this many hours")] = None,
    slow_minutes: Annotated[float | None, typer.Option(help="a run longer than this many minutes")] = None,
    email: Annotated[
        list[str] | None, typer.Option("--email", help="an alert address (repeat; replaces them)")
    ] = None,
    no_emails: Annotated[bool, typer.Option("--no-emails", help="remove every alert address")] = False,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Change an export's alert rules: only what the options say."""
    rules: dict[AlertKind, dict[str, Any]] = {}
    for kind in on or []:
        rules.setdefault(kind, {"kind": kind.value})["enabled"] = True
    for kind in off or []:
        rules.setdefault(kind, {"kind": kind.value})["enabled"] = False
    for kind, value in ((AlertKind.REJECTED, rejected_percent), (AlertKind.STALE, stale_hours),
                        (AlertKind.SLOW, slow_minutes)):  # fmt: skip
        if value is not None:
            rules.setdefault(kind, {"kind": kind.value})["threshold"] = value
    emails = [] if no_emails else email
    with as_actor(as_user) as (_, session, user):
        found = records.find(session=session, key=export, actor=user)
        alerts.set_rules(session=session, export=found, actor=user, rules=list(rules.values()), emails=emails)
        data = _alerts_json(session, found.id)
    _print_alerts(data, as_json)
