"""What the notification tests share: endpoints made through the service, sending until settled."""

from __future__ import annotations

import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from exports.world import World  # tests/ is on sys.path (rootdir)
from receivers import Received
from segmentsync.db import transaction
from segmentsync.exports import service as exports
from segmentsync.exports.models import Export, Run
from segmentsync.notifications import service
from segmentsync.notifications.delivery import Sender
from segmentsync.notifications.models import Delivery, DeliveryStatus
from segmentsync.scheduling.worker import Worker


def run_export(world: World, export_id: int) -> Run:
    """Queue a run of the export as the admin and let a worker run it to its end; the run as it ended."""
    actor = world.admin.load(world.runtime)
    with transaction(world.runtime.sessions) as session:
        run_id = exports.run(session=session, export=session.get_one(Export, export_id), actor=actor).id
    assert Worker(world.runtime).run_once() == run_id
    with world.runtime.readers() as session:
        return session.get_one(Run, run_id)


def endpoint(world: World, url: str, events: list[str] | None = None) -> tuple[int, str]:
    actor = world.admin.load(world.runtime)
    with transaction(world.runtime.sessions) as session:
        made, secret = service.create(session=session, settings=world.runtime.settings, vault=world.runtime.vault,
                                      actor=actor, url=url, event_types=events or ["*"])  # fmt: skip
        return made.id, secret


def deliveries(world: World) -> list[Delivery]:
    with world.runtime.readers() as session:
        return list(session.scalars(sa.select(Delivery).order_by(Delivery.id)))


def send_all(world: World, rounds: int = 50) -> list[Delivery]:
    """Let a sender work until nothing is pending or being sent (retries are due at once here)."""
    sender = Sender(world.runtime)
    for _ in range(rounds):
        sender.run_once()
        found = deliveries(world)
        if all(d.status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED) for d in found):
            return found
    raise AssertionError(f"deliveries still open after {rounds} rounds: {deliveries(world)}")


def verified(secret: str, request: Received) -> object:
    """The payload, verified by the standardwebhooks library's own verifier (raises if it fails)."""
    return Webhook(secret).verify(request.body, request.headers)
