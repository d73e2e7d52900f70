"""Alert rules end to end: a real run that fails permanently triggers one alert (in-app, webhook and
e-mail to a real SMTP server), a second failure says nothing more, a success resolves it once; a
scheduled export without a success for too long goes stale."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from exports.world import World  # tests/ is on sys.path (rootdir)
from receivers import receiver, smtpd
from segmentsync.auth.models import Notification
from segmentsync.db import transaction, utcnow
from segmentsync.errors import Forbidden, Invalid
from segmentsync.exports.models import Export, RunStatus
from segmentsync.notifications import alerts, events
from segmentsync.notifications.delivery import Sender
from segmentsync.notifications.models import AlertKind, Channel

from .helpers import deliveries, endpoint, run_export, send_all, verified


def run(world: World, export_id: int) -> RunStatus:
    return run_export(world, export_id).status


def notices(world: World) -> list[tuple[str, str]]:
    with world.runtime.readers() as session:
        rows = session.execute(sa.select(Notification.kind, Notification.message).order_by(Notification.id))
        return [(kind, message) for kind, message in rows]


def set_rules(world: World, export_id: int, **values: Any) -> list[alerts.RuleState]:
    actor = world.admin.load(world.runtime)
    with transaction(world.runtime.sessions) as session:
        export = session.get_one(Export, export_id)
        return alerts.set_rules(session=session, export=export, actor=actor, **values)


def test_a_permanent_failure_alerts_once_by_every_channel_and_a_success_resolves_it_once(
    world: World,
) -> None:
    settings = world.runtime.settings
    with smtpd() as mail, receiver() as hooks:
        settings.smtp_url = SecretStr(f"smtp://127.0.0.1:{mail.port}?starttls=false")
        settings.smtp_from = "segmentsync@example.net"
        _id, secret = endpoint(world, hooks.url, [events.ALERT_TRIGGERED, events.ALERT_RESOLVED])
        export_id = world.create(world.form()).export_id
        set_rules(world, export_id, rules=[], emails=["OnCall@Example.org"])
        settings.export_limit = 5  # the segment holds 10: the run fails for good
        assert run(world, export_id) is RunStatus.FAILED
        assert run(world, export_id) is RunStatus.FAILED  # still failing: no second alert
        settings.export_limit = 1_000_000
        assert run(world, export_id) is RunStatus.SUCCEEDED
        assert run(world, export_id) is RunStatus.SUCCEEDED  # still fine: no second recovery
        sent = send_all(world)
        messages = mail.wait_for(2)
        payloads: list[Any] = [verified(secret, request) for request in hooks.requests]
    assert [(d.channel, d.event_type) for d in sent] == [
        (Channel.WEBHOOK, events.ALERT_TRIGGERED),
        (Channel.EMAIL, events.ALERT_TRIGGERED),
        (Channel.WEBHOOK, events.ALERT_RESOLVED),
        (Channel.EMAIL, events.ALERT_RESOLVED),
    ]
    assert [kind for kind, _ in notices(world)] == ["alert_triggered", "alert_resolved"]
    assert "failed permanently" in notices(world)[0][1]
    assert len(messages) == 2
    (alert_env, alert), (resolved_env, resolved) = messages
    assert alert["Subject"] == "[segmentsync] Alert: run failed permanently — Newsletter PL"
    assert resolved["Subject"] == "[segmentsync] Resolved: run failed permanently — Newsletter PL"
    assert sorted(alert_env.rcpt_tos) == sorted([world.admin.email, "oncall@example.org"])
    assert alert["From"] == "segmentsync@example.net"
    assert "may send at most 5" in alert.get_payload()
    assert f"{settings.public_base_url}/runs/" in alert.get_payload()
    assert resolved_env.rcpt_tos == alert_env.rcpt_tos
    assert [p["type"] for p in payloads] == ["alert.triggered", "alert.resolved"]
    assert payloads[0]["data"]["alert"]["rule"] == "failed"
    assert payloads[0]["data"]["export"] == {"id": export_id, "name": "Newsletter PL"}


def test_a_scheduled_export_without_a_success_goes_stale_once_and_recovers_with_a_run(world: World) -> None:
    unscheduled = world.create(world.form(name="By hand", schedule_mode="off")).export_id
    by_system = world.create(
        world.form(name="With the system refresh")
    ).export_id  # the system schedule is off
    export_id = world.create(world.form(schedule_mode="cron", cron="0 6 * * *")).export_id
    for other in (unscheduled, by_system):
        set_rules(world, other, rules=[{"kind": "stale", "threshold": 2}])
    set_rules(world, export_id, rules=[{"kind": "stale", "threshold": 2}, {"kind": "slow", "enabled": False}])
    sender = Sender(world.runtime)
    assert sender.check_alerts() == 0  # made just now
    later = utcnow() + timedelta(hours=3)
    world.runtime.clock = lambda: later
    assert sender.check_alerts() == 1
    assert sender.check_alerts() == 0  # still stale: said once
    world.runtime.clock = utcnow
    assert run(world, export_id) is RunStatus.SUCCEEDED
    assert [kind for kind, _ in notices(world)] == ["alert_triggered", "alert_resolved"]
    assert "no successful run for 3 hours (over 2)" in notices(world)[0][1]
    assert deliveries(world) == []  # no endpoint, no SMTP: in-app only
    with world.runtime.readers() as session:
        states = {s.kind: s for s in alerts.rules_of(session, export_id)}
    assert (states[AlertKind.STALE].holding, states[AlertKind.STALE].threshold) == (False, 2.0)
    assert states[AlertKind.SLOW].enabled is False


def test_alert_rules_are_checked_and_only_editors_change_them(world: World) -> None:
    export_id = world.create(world.form()).export_id
    with pytest.raises(Invalid, match="between 0 and 100"):
        set_rules(world, export_id, rules=[{"kind": "rejected", "threshold": 150}])
    with pytest.raises(Invalid, match="unknown alert rule"):
        set_rules(world, export_id, rules=[{"kind": "bogus"}])
    with pytest.raises(Invalid, match="not an e-mail address"):
        set_rules(world, export_id, rules=[], emails=["nobody"])
    viewer = world.viewer.load(world.runtime)
    with transaction(world.runtime.sessions) as session, pytest.raises(Forbidden):
        alerts.set_rules(session=session, export=session.get_one(Export, export_id), actor=viewer, rules=[])
