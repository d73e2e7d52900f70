"""What orchestrators (Airflow, Dagster, cron, CI) rely on: trigger by name with an idempotency key,
wait for the run's end in one request, Location on 201, Retry-After on 429/503, the bearer scheme."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from segmentsync.auth import audit, signin
from segmentsync.db import transaction, utcnow
from segmentsync.scheduling.worker import Worker

from .world import World

API = "/api/v1"


def trigger(client: TestClient, world: World, name: str, key: str | None = None, **body: Any) -> Any:
    headers = {**world.admin.auth, **({"Idempotency-Key": key} if key else {})}
    return client.post(f"{API}/exports/by-name/{name}/runs", json=body or None, headers=headers)


def test_the_same_idempotency_key_answers_the_same_run(client: TestClient, world: World) -> None:
    export = world.create(world.form())
    first = trigger(client, world, "Newsletter PL", key="airflow-run-2026-12-07")
    assert first.status_code == 201, first.text
    run_id = first.json()["id"]
    assert first.headers["location"] == f"{API}/runs/{run_id}"
    again = trigger(client, world, "Newsletter PL", key="airflow-run-2026-12-07")
    assert (again.status_code, again.json()["id"], again.headers["idempotent-replayed"]) == (
        200,
        run_id,
        "true",
    )
    by_id = client.post(
        f"{API}/exports/{export.export_id}/runs",
        headers={**world.admin.auth, "Idempotency-Key": "airflow-run-2026-12-07"},
    )
    assert (by_id.status_code, by_id.json()["id"]) == (200, run_id)
    other_options = trigger(client, world, "Newsletter PL", key="airflow-run-2026-12-07", dry_run=True)
    assert (other_options.status_code, other_options.json()["error"]["code"]) == (
        422,
        "idempotency_key_reused",
    )
    assert trigger(client, world, "Newsletter PL", key="another-key").status_code == 409  # one active run
    assert trigger(client, world, "Newsletter PL", key="bad key with spaces").status_code == 422
    assert trigger(client, world, "No such export").status_code == 404
    runs = client.get(f"{API}/runs", params={"export_id": export.export_id}, headers=world.admin.auth).json()
    assert [r["id"] for r in runs["items"]] == [run_id]  # never a second run

    # After 24 hours the key is forgotten: it starts a new run (the first one has ended).
    client.post(f"{API}/runs/{run_id}/cancel", headers=world.admin.auth)
    world.runtime.clock = lambda: utcnow() + timedelta(hours=25)
    later = trigger(client, world, "Newsletter PL", key="airflow-run-2026-12-07")
    assert later.status_code == 201
    assert later.json()["id"] != run_id


def test_get_run_waits_for_its_end_without_holding_the_store(client: TestClient, world: World) -> None:
    world.create(world.form())
    run_id = trigger(client, world, "Newsletter PL").json()["id"]
    # Nobody runs it: the wait is bounded and answers the run as it is.
    assert (
        client.get(f"{API}/runs/{run_id}", params={"wait": 0.3}, headers=world.admin.auth).json()["status"]
        == "queued"
    )
    assert (
        client.get(f"{API}/runs/{run_id}", params={"wait": 61}, headers=world.admin.auth).status_code == 422
    )
    # A worker runs it while the request waits; on SQLite it could not write if the waiting request
    # held a transaction (the write lock), and the answer would come back unfinished.
    started = threading.Event()

    def work() -> None:
        started.wait(10)
        Worker(world.runtime).run_once()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        started.set()
        answer = client.get(f"{API}/runs/{run_id}", params={"wait": 60}, headers=world.admin.auth)
    finally:
        worker.join()
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["counts"]["new"]) == ("succeeded", 10)


def test_throttled_answers_say_when_to_retry_and_the_document_declares_the_bearer_scheme(
    client: TestClient, store_url: str
) -> None:
    if not store_url.startswith("sqlite"):
        pytest.skip("once is enough: the store does not change the headers or the document")
    # Ten failed sign-ins from this address, as the sign-in records them (without hashing ten
    # passwords: argon2 is slow on purpose); the eleventh attempt is throttled.
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with transaction(runtime.sessions) as session:
        for _ in range(signin.THROTTLE_LIMIT):
            audit.record(
                session, actor=None, action=signin.SIGN_IN_FAILED, object_type="user",
                object_label="ada@example.com", ip="testclient", actor_label="ada@example.com",
            )  # fmt: skip
    throttled = client.post(f"{API}/session", json={"email": "ada@example.com", "password": "wrong password"})
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["retry-after"]) <= 15 * 60 + 1
    spec = client.get(f"{API}/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }  # fmt: skip
    operation = spec["paths"][f"{API}/exports/by-name/{{name}}/runs"]["post"]
    assert {"bearerAuth": []} in operation["security"]
    assert "Idempotency-Key" in [p["name"] for p in operation["parameters"]]
    assert spec["paths"][f"{API}/session"]["post"]["security"] == []


def test_two_requests_with_one_key_at_once_start_one_run(client: TestClient, world: World) -> None:
    export = world.create(world.form())
    answers: list[Any] = []
    go = threading.Barrier(2)

    def send() -> None:
        go.wait(10)
        answers.append(trigger(client, world, "Newsletter PL", key="retry-storm"))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    runs = client.get(f"{API}/runs", params={"export_id": export.export_id}, headers=world.admin.auth).json()
    assert runs["total"] == 1
