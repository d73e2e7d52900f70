"""Run lifecycle webhooks end to end: a real run, the outbox, a real HTTP receiver that verifies every
signature with the standardwebhooks library's own verifier, retries after a 500 and a timeout, and an
endpoint disabled after it kept failing."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from exports.world import World  # tests/ is on sys.path (rootdir)
from receivers import HANG, receiver
from segmentsync.auth.models import Notification
from segmentsync.db import transaction
from segmentsync.notifications import events
from segmentsync.notifications.delivery import adopt_legacy
from segmentsync.notifications.models import DeliveryStatus, WebhookEndpoint

from .helpers import deliveries, endpoint, run_export, send_all, verified


def test_a_run_sends_started_and_succeeded_signed_by_the_standard_and_free_of_members(world: World) -> None:
    with receiver() as hooks:
        endpoint_id, secret = endpoint(world, hooks.url)
        _other, _ = endpoint(world, hooks.url.replace("/hooks", "/only-failures"), [events.RUN_FAILED])
        export_id = world.create(world.form()).export_id
        run_id = run_export(world, export_id).id
        sent = send_all(world)
        assert [(d.event_type, d.status) for d in sent] == [
            (events.RUN_STARTED, DeliveryStatus.DELIVERED),
            (events.RUN_SUCCEEDED, DeliveryStatus.DELIVERED),
        ]  # the endpoint subscribed to run.failed only got nothing
        assert all(d.endpoint_id == endpoint_id and d.response_code == 200 and d.attempts == 1 for d in sent)
        payloads: list[Any] = [verified(secret, request) for request in hooks.requests]
    assert [p["type"] for p in payloads] == ["run.started", "run.succeeded"]
    data = payloads[1]["data"]
    assert data["run"]["id"] == run_id
    assert data["run"]["status"] == "succeeded"
    assert data["run"]["will_retry"] is False
    assert data["run"]["counts"]["new"] == 10
    assert data["run"]["error"] is None
    assert data["export"] == {"id": export_id, "name": "Newsletter PL"}
    assert data["platform"] == "campaign_monitor"
    base = world.runtime.settings.public_base_url
    assert data["links"] == {"ui": f"{base}/runs/{run_id}", "api": f"{base}/api/v1/runs/{run_id}"}
    bodies = b"".join(r.body for r in hooks.requests)
    assert b"@example.com" not in bodies  # no member's e-mail (nor any other member data)
    assert world.cm.credentials["ApiKey"].encode() not in bodies
    ids = [r.headers["webhook-id"] for r in hooks.requests]
    assert len(set(ids)) == 2
    assert all(i.startswith("msg_") for i in ids)


def test_an_event_of_a_rolled_back_change_is_never_written(world: World) -> None:
    with receiver() as hooks:
        endpoint(world, hooks.url)
        with world.runtime.sessions() as session, session.begin() as outer:
            assert events.emit(session, events.RUN_CANCELLED, {"run": {"id": 1}}) == 1
            outer.rollback()
        assert deliveries(world) == []
        with transaction(world.runtime.sessions) as session:
            events.emit(session, events.RUN_CANCELLED, {"run": {"id": 1}})
        assert [d.event_type for d in deliveries(world)] == [events.RUN_CANCELLED]


def test_a_500_and_a_timeout_are_retried_with_the_same_id_until_a_2xx(world: World) -> None:
    with receiver(script=[500, HANG, 204]) as hooks:
        _id, secret = endpoint(world, hooks.url)
        with transaction(world.runtime.sessions) as session:
            events.emit(session, events.RUN_CANCELLED, {"run": {"id": 7}})
        [delivery] = send_all(world)
        hooks.release()
        assert [r.answered for r in hooks.requests] == [500, HANG, 204]
        assert len({r.headers["webhook-id"] for r in hooks.requests}) == 1
        for request in hooks.requests:  # each attempt is signed afresh, and each verifies
            assert verified(secret, request) == orjson.loads(hooks.requests[0].body)
    assert (delivery.status, delivery.attempts, delivery.response_code) == (DeliveryStatus.DELIVERED, 3, 204)


def test_an_endpoint_that_keeps_failing_is_disabled_and_the_admins_are_told(world: World) -> None:
    with receiver(default=500) as hooks:
        endpoint_id, _ = endpoint(world, hooks.url)
        with transaction(world.runtime.sessions) as session:
            events.emit(session, events.RUN_CANCELLED, {"run": {"id": 7}})
        [delivery] = send_all(world)
        assert len(hooks.requests) == 4  # the first attempt and three retries
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 4)
        assert delivery.error is not None
        assert delivery.error.startswith("HTTP 500")
        with world.runtime.readers() as session:
            ep = session.get(WebhookEndpoint, endpoint_id)
            assert ep is not None
            assert not ep.enabled
            assert "failed 4 times" in (ep.disabled_reason or "")
            notices = session.scalars(
                sa.select(Notification.message).where(Notification.kind == "webhook_disabled")
            )
            assert [hooks.url in text for text in notices] == [True]
        with transaction(world.runtime.sessions) as session:
            assert (
                events.emit(session, events.RUN_CANCELLED, {"run": {"id": 8}}) == 0
            )  # disabled: nothing queued


@pytest.mark.parametrize("status", [301, 404])
def test_a_redirect_or_an_error_answer_is_not_delivered(world: World, status: int) -> None:
    world.runtime.settings.webhooks_retry_seconds = ""  # one attempt
    with receiver(default=status) as hooks:
        endpoint(world, hooks.url)
        with transaction(world.runtime.sessions) as session:
            events.emit(session, events.RUN_CANCELLED, {"run": {"id": 7}})
        [delivery] = send_all(world)
    assert (delivery.status, delivery.response_code) == (DeliveryStatus.FAILED, status)


def test_the_old_one_url_setting_becomes_a_run_failed_endpoint_keeping_its_key(world: World) -> None:
    settings = world.runtime.settings
    with receiver() as hooks:
        settings.notification_webhook_url = hooks.url
        settings.notification_webhook_secret = SecretStr("the old shared secret")
        adopt_legacy(world.runtime)
        adopt_legacy(world.runtime)  # every process start: made once
        with transaction(world.runtime.sessions) as session:
            assert events.emit(session, events.RUN_FAILED, {"run": {"id": 3}}) == 1
            assert events.emit(session, events.RUN_SUCCEEDED, {"run": {"id": 3}}) == 0
        send_all(world)
        key = "whsec_" + base64.b64encode(b"the old shared secret").decode()
        assert verified(key, hooks.requests[0])["type"] == "run.failed"  # type: ignore[index]
