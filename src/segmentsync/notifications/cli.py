"""`segmentsync webhooks …`: endpoints, deliveries, redeliver, test, rotate-secret (as ``--as`` or the first admin)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from segmentsync.auth.models import User
from segmentsync.notifications import service
from segmentsync.notifications.models import DeliveryStatus
from segmentsync.notifications.schemas import DeliveryOut, WebhookOut
from segmentsync.runtime import Runtime
from segmentsync.terminal import AsUser, Json, actor, open_runtime, out, print_json, reported_errors

app = typer.Typer(no_args_is_help=True, help="Webhook endpoints: events, deliveries, secrets.")
IdArg = Annotated[int, typer.Argument(help="the endpoint's id (see `segmentsync webhooks list`)")]
Events = Annotated[
    list[str] | None,
    typer.Option("--event", "-e", help='an event type (repeat the option), or "*" for all'),
]


@contextmanager
def as_actor(as_user: str | None) -> Iterator[tuple[Runtime, Session, User]]:
    with open_runtime() as runtime, reported_errors(), runtime.sessions() as session, session.begin():
        yield runtime, session, actor(session, as_user)


def _endpoint_json(endpoint: Any) -> dict[str, Any]:
    return WebhookOut.model_validate(endpoint).model_dump(mode="json")


def _print_endpoints(rows: list[dict[str, Any]]) -> None:
    table = Table("id", "url", "events", "enabled", "description")
    for row in rows:
        state = "yes" if row["enabled"] else f"no: {row['disabled_reason'] or ''}"
        table.add_row(str(row["id"]), row["url"], ", ".join(row["events"]), state, row["description"])
    out.print(table)


@app.command("list")
def list_endpoints(as_user: AsUser = None, as_json: Json = False) -> None:
    """List webhook endpoints."""
    with as_actor(as_user) as (_, session, user):
        records_ = service.listing_for(session=session, actor=user)
        rows = [_endpoint_json(e) for e in records_]
    if as_json:
        print_json(rows)
    else:
        _print_endpoints(rows)


@app.command()
def create(
    url: Annotated[str, typer.Argument(help="http(s) URL that receives the events")],
    event: Events = None,
    description: Annotated[str, typer.Option(help="what it is for")] = "",
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Add an endpoint; its signing secret (whsec_…) is printed once."""
    with as_actor(as_user) as (runtime, session, user):
        endpoint, secret = service.create(session=session, settings=runtime.settings, vault=runtime.vault, actor=user,
                                          url=url, event_types=event or ["*"], description=description)  # fmt: skip
        row = _endpoint_json(endpoint)
    if as_json:
        print_json({**row, "secret": secret})
        return
    out.print(
        f"added webhook endpoint #{row['id']} ({row['url']}) for {', '.join(row['events'])}", highlight=False
    )
    out.print(f"signing secret (shown once): {secret}", highlight=False, soft_wrap=True)


@app.command()
def update(
    endpoint_id: IdArg,
    url: Annotated[str | None, typer.Option(help="a new URL")] = None,
    event: Events = None,
    description: Annotated[str | None, typer.Option(help="a new description")] = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", help="send to it, or not")] = None,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Change an endpoint (only the options given)."""
    with as_actor(as_user) as (runtime, session, user):
        endpoint = service.update(session=session, settings=runtime.settings, actor=user,
                                  endpoint=service.get(session, endpoint_id), url=url, event_types=event,
                                  description=description, enabled=enabled)  # fmt: skip
        row = _endpoint_json(endpoint)
    print_json(row) if as_json else _print_endpoints([row])


@app.command()
def delete(endpoint_id: IdArg, as_user: AsUser = None, as_json: Json = False) -> None:
    """Remove an endpoint and its deliveries."""
    with as_actor(as_user) as (_, session, user):
        service.remove(session=session, actor=user, endpoint=service.get(session, endpoint_id))
    print_json({"deleted": endpoint_id}) if as_json else out.print(f"removed webhook endpoint #{endpoint_id}")


@app.command("rotate-secret")
def rotate_secret(endpoint_id: IdArg, as_user: AsUser = None, as_json: Json = False) -> None:
    """A new signing secret, printed once; the previous one keeps signing for 24 hours."""
    with as_actor(as_user) as (runtime, session, user):
        secret = service.rotate(session=session, vault=runtime.vault, actor=user,
                                endpoint=service.get(session, endpoint_id), now=runtime.clock())  # fmt: skip
    if as_json:
        print_json({"secret": secret})
    else:
        out.print(f"new signing secret (shown once): {secret}", highlight=False, soft_wrap=True)


def _print_deliveries(rows: list[dict[str, Any]]) -> None:
    table = Table("id", "event", "status", "attempts", "code", "ms", "created", "error")
    for r in rows:
        table.add_row(str(r["id"]), r["event_type"], r["status"], str(r["attempts"]), str(r["response_code"] or ""),
                      str(r["latency_ms"] or ""), r["created_at"][:19], r["error"] or "")  # fmt: skip
    out.print(table)


@app.command("test")
def send_test(endpoint_id: IdArg, as_user: AsUser = None, as_json: Json = False) -> None:
    """Queue a webhook.test event to the endpoint (a running serve or worker sends it)."""
    with as_actor(as_user) as (runtime, session, user):
        delivery = service.send_test(session=session, actor=user, endpoint=service.get(session, endpoint_id),
                                     now=runtime.clock())  # fmt: skip
        row = DeliveryOut.model_validate(delivery).model_dump(mode="json")
    print_json(row) if as_json else out.print(f"queued test delivery #{row['id']} ({row['message_id']})")


@app.command()
def deliveries(
    endpoint_id: IdArg,
    status: Annotated[DeliveryStatus | None, typer.Option(help="only deliveries in this state")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """The endpoint's latest deliveries: status, attempts, response code, latency, error."""
    with as_actor(as_user) as (_, session, user):
        service.get_for(session=session, actor=user, endpoint_id=endpoint_id)
        rows = [DeliveryOut.model_validate(d).model_dump(mode="json")
                for d in session.scalars(service.deliveries(endpoint_id, status).limit(limit))]  # fmt: skip
    print_json(rows) if as_json else _print_deliveries(rows)


@app.command()
def redeliver(
    endpoint_id: IdArg,
    delivery_id: Annotated[int, typer.Argument(help="the delivery's id (see `deliveries`)")],
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Send a delivered or failed message again, with the same webhook-id."""
    with as_actor(as_user) as (runtime, session, user):
        delivery = service.redeliver(session=session, actor=user, endpoint=service.get(session, endpoint_id),
                          delivery_id=delivery_id, now=runtime.clock())  # fmt: skip
        row = DeliveryOut.model_validate(delivery).model_dump(mode="json")
    print_json(row) if as_json else out.print(f"delivery #{delivery_id} queued again")
