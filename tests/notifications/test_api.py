"""The webhooks API (admins only) and an export's alert rules over HTTP, with a real receiver."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from exports.world import World  # tests/ is on sys.path (rootdir)
from receivers import receiver
from segmentsync.api import app as app_module
from segmentsync.runtime import Runtime

from .helpers import send_all, verified

API = "/api/v1/webhooks"


@pytest.fixture
def client(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(app_module, "WEB_MODULE", "segmentsync.web.not_mounted_in_these_tests")
    app: FastAPI = app_module.create_app(runtime)
    return TestClient(app)


def test_admins_manage_endpoints_test_them_redeliver_and_rotate_the_secret(
    client: TestClient, world: World
) -> None:
    admin = world.admin.auth
    with receiver() as hooks:
        assert (
            client.post(
                API, json={"url": hooks.url, "events": ["*"]}, headers=world.contributor.auth
            ).status_code
            == 403
        )
        made = client.post(API, json={"url": hooks.url, "events": ["run.failed", "alert.triggered"], "description": "on-call"},
                           headers=admin)  # fmt: skip
        assert made.status_code == 201, made.text
        endpoint: dict[str, Any] = made.json()
        secret = endpoint["secret"]
        assert secret.startswith("whsec_")
        shown = client.get(f"{API}/{endpoint['id']}", headers=admin).json()
        assert "secret" not in shown
        assert shown["events"] == ["run.failed", "alert.triggered"]
        assert secret not in client.get(API, headers=admin).text

        tested = client.post(f"{API}/{endpoint['id']}/test", headers=admin)
        assert tested.status_code == 202
        send_all(world)
        [first] = hooks.requests
        assert verified(secret, first)["type"] == "webhook.test"  # type: ignore[index]
        listed = client.get(f"{API}/{endpoint['id']}/deliveries", headers=admin).json()
        assert [(d["status"], d["attempts"], d["response_code"]) for d in listed["items"]] == [
            ("delivered", 1, 200)
        ]
        assert listed["items"][0]["latency_ms"] is not None

        rotated = client.post(f"{API}/{endpoint['id']}/rotate-secret", headers=admin).json()["secret"]
        assert rotated != secret
        again = client.post(
            f"{API}/{endpoint['id']}/deliveries/{tested.json()['id']}/redeliver", headers=admin
        )
        assert again.status_code == 202, again.text
        send_all(world)
        second = hooks.requests[1]
        assert second.headers["webhook-id"] == first.headers["webhook-id"]  # receivers dedupe on it
        verified(rotated, second)
        verified(secret, second)  # signed by both for 24 hours after a rotation
        assert len(second.headers["webhook-signature"].split(" ")) == 2

        changed = client.patch(
            f"{API}/{endpoint['id']}", json={"enabled": False, "events": ["*"]}, headers=admin
        )
        assert (changed.json()["enabled"], changed.json()["events"]) == (False, ["*"])
        assert client.post(f"{API}/{endpoint['id']}/deliveries/{tested.json()['id']}/redeliver",
                           headers=admin).status_code == 409  # fmt: skip
        assert client.delete(f"{API}/{endpoint['id']}", headers=admin).status_code == 204
        assert client.get(f"{API}/{endpoint['id']}", headers=admin).status_code == 404
    Webhook(secret)  # a secret the library takes as it is


REFUSED = [
    ("ftp://example.com/hook", "only http:// and https://"),
    ("http://127.0.0.1:9/hook", "non-public address"),
    ("http://169.254.169.254/latest/meta-data", "non-public address"),
    ("http://10.1.2.3/hook", "non-public address"),
    ("http://[::1]/hook", "non-public address"),
    ("http://[::ffff:192.168.0.1]/hook", "non-public address"),
    ("http://100.64.0.1/hook", "non-public address"),
    ("http://localhost:8000/hook", "non-public address"),
    ("https://user:pass@example.com/hook", "user name or password"),
    ("not a url", "only http:// and https://"),
]


def test_urls_that_are_not_public_http_are_refused_by_name(client: TestClient, world: World) -> None:
    world.runtime.settings.webhooks_allow_private = False
    for url, problem in REFUSED:
        refused = client.post(API, json={"url": url, "events": ["*"]}, headers=world.admin.auth)
        assert refused.status_code == 422, (url, refused.text)
        assert refused.json()["error"]["field"] == "url"
        assert problem in refused.json()["error"]["message"], url
    world.runtime.settings.webhooks_allow_private = True  # receivers on your own network
    assert (
        client.post(
            API, json={"url": "http://10.1.2.3/hook", "events": ["*"]}, headers=world.admin.auth
        ).status_code
        == 201
    )


def test_unknown_events_are_refused_and_one_url_is_one_endpoint(client: TestClient, world: World) -> None:
    bad = client.post(
        API, json={"url": "https://example.com/h", "events": ["run.exploded"]}, headers=world.admin.auth
    )
    assert bad.status_code == 422
    assert "unknown event 'run.exploded'" in bad.json()["error"]["message"]
    assert (
        client.post(
            API, json={"url": "https://example.com/h", "events": ["*"]}, headers=world.admin.auth
        ).status_code
        == 201
    )
    twice = client.post(API, json={"url": "https://example.com/h", "events": ["*"]}, headers=world.admin.auth)
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "webhook_exists")


def test_export_alert_rules_are_read_by_viewers_and_changed_by_editors(
    client: TestClient, world: World
) -> None:
    export_id = world.create(world.form()).export_id
    url = f"/api/v1/exports/{export_id}/alerts"
    shown = client.get(url, headers=world.viewer.auth).json()
    assert [(r["kind"], r["enabled"], r["threshold"]) for r in shown["rules"]] == [
        ("failed", True, None), ("rejected", True, 10.0), ("stale", True, 24.0), ("slow", True, 60.0),
    ]  # fmt: skip
    assert client.put(url, json={"rules": []}, headers=world.viewer.auth).status_code == 403
    changed = client.put(url, json={"rules": [{"kind": "slow", "threshold": 15}, {"kind": "failed", "enabled": False}],
                                    "emails": ["ops@example.org"]}, headers=world.contributor.auth)  # fmt: skip
    assert changed.status_code == 200, changed.text
    rules = {r["kind"]: r for r in changed.json()["rules"]}
    assert (rules["slow"]["threshold"], rules["failed"]["enabled"], rules["rejected"]["threshold"]) == (
        15.0,
        False,
        10.0,
    )
    assert changed.json()["emails"] == ["ops@example.org"]
    bad = client.put(url, json={"rules": [{"kind": "stale", "threshold": 0}]}, headers=world.admin.auth)
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "threshold_stale")
