"""``/healthz`` and ``/readyz`` in ready and not-ready states (each check failing on its own), on
the web app and on ``segmentsync worker --metrics-port``; no plain-text line from either process
in JSON mode, shutdown included."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from segmentsync.api.app import create_app
from segmentsync.db import SCHEMA_HEAD
from segmentsync.observe.health import worker_app
from segmentsync.runtime import Runtime
from segmentsync.scheduling.cli import MetricsServer
from segmentsync.scheduling.worker import Worker
from segmentsync.settings import Settings

from .scrape import scrape_url, value

UNREACHABLE_PG = "postgresql://nobody:pg-secret-pw@127.0.0.1:1/none"
CLI = str(Path(sys.executable).with_name("segmentsync"))


def readyz(client: TestClient) -> tuple[int, dict[str, Any]]:
    answer = client.get("/readyz")
    assert answer.headers["content-type"] == "application/json"
    return answer.status_code, answer.json()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # touches no store
def test_healthz_answers_without_a_sign_in(runtime: Runtime) -> None:
    for app in (create_app(runtime), worker_app(runtime)):
        answer = TestClient(app).get("/healthz")
        assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_ready_when_the_store_is_migrated_and_the_profile_source_answers(runtime: Runtime) -> None:
    status, body = readyz(TestClient(create_app(runtime)))  # a web process without workers
    assert (status, body["status"], body["failing"]) == (200, "ready", [])
    assert set(body["checks"]) == {"store", "migrations", "profiles"}
    assert body["checks"]["migrations"] == {"ok": True, "head": SCHEMA_HEAD}
    assert "no profile store" in body["checks"]["profiles"]["note"]  # reachable, nothing loaded yet


def test_a_process_with_workers_is_ready_once_a_worker_beats(runtime: Runtime) -> None:
    app = create_app(runtime)
    app.state.runs_workers = True
    client = TestClient(app)
    status, body = readyz(client)
    assert (status, body["status"], body["failing"]) == (503, "not ready", ["workers"])
    assert "heartbeat" in body["checks"]["workers"]["error"]
    Worker(runtime).beat()
    status, body = readyz(client)
    assert (status, body["checks"]["workers"]) == (200, {"ok": True, "alive": 1})


def test_not_ready_while_the_store_is_behind_this_codes_migrations(runtime: Runtime) -> None:
    def set_version(version: str) -> None:
        with runtime.engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": version})

    set_version("0005")
    try:
        status, body = readyz(TestClient(create_app(runtime)))
    finally:  # the PostgreSQL database is the process's, for the next tests
        set_version(SCHEMA_HEAD)
    assert (status, body["failing"]) == (503, ["migrations"])
    assert (
        body["checks"]["migrations"]["error"]
        == f"the store's schema is at 0005, this code needs {SCHEMA_HEAD}"
    )


def test_not_ready_without_the_store_and_the_password_is_not_shown(tmp_path: Path) -> None:
    runtime = Runtime.open(Settings(data_dir=tmp_path, database_url=UNREACHABLE_PG), migrate=False)
    try:
        status, body = readyz(TestClient(worker_app(runtime)))
    finally:
        runtime.close()
    assert (status, body["failing"]) == (503, ["store", "migrations", "workers"])
    assert "OperationalError" in body["checks"]["store"]["error"]
    assert "pg-secret-pw" not in json.dumps(body)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # the profile source's check
def test_not_ready_when_the_profile_source_does_not_answer(tmp_path: Path, store_url: str) -> None:
    settings = Settings(data_dir=tmp_path, database_url=store_url, profiles_url=UNREACHABLE_PG)
    runtime = Runtime.open(settings)
    try:
        status, body = readyz(TestClient(create_app(runtime)))
    finally:
        runtime.close()
    assert (status, body["failing"]) == (503, ["profiles"])
    assert "cannot connect to the profile source" in body["checks"]["profiles"]["error"]
    assert "pg-secret-pw" not in json.dumps(body)


# ---------------------------------------------------------------- the processes, in JSON mode


@pytest.fixture
def json_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMENTSYNC_", "OTEL_"))}
    env.update(
        SEGMENTSYNC_DATA_DIR=str(tmp_path / "data"),
        SEGMENTSYNC_SECRET_KEY=Fernet.generate_key().decode(),
        SEGMENTSYNC_LOG_FORMAT="json",
        SEGMENTSYNC_PORT="0",
    )
    return env


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def start(processes: list[subprocess.Popen[str]], env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    processes.append(process)
    return process


def read_until(stream: IO[str], seen: list[str], needle: str) -> str:
    """Lines of ``stream`` into ``seen`` until one contains ``needle``; returns it."""
    for line in stream:
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"the process ended before writing {needle!r}: {''.join(seen)}")


def stop(process: subprocess.Popen[str], seen: list[str]) -> list[dict[str, Any]]:
    """SIGTERM, wait, and every line it wrote (each must be a JSON object)."""
    process.send_signal(signal.SIGTERM)
    rest, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    lines = [line for line in [*seen, *errors.splitlines(), *rest.splitlines()] if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a plain-text line in JSON mode: {line!r}")
    return parsed


def test_worker_and_serve_answer_probes_and_write_only_json_until_they_stop(
    json_env: dict[str, str], processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    # Both at once (they start in parallel: half the wall time); each with its own data dir.
    serve_env = {**json_env, "SEGMENTSYNC_DATA_DIR": str(tmp_path / "serve")}
    worker = start(processes, json_env, "worker", "--metrics-port", "0")
    serve = start(processes, serve_env, "serve")
    assert worker.stderr is not None
    assert serve.stderr is not None

    # the worker: /healthz, /readyz (its worker beats as it starts), /metrics
    seen_worker: list[str] = []
    url = json.loads(read_until(worker.stderr, seen_worker, '"metrics_url"'))["metrics_url"]
    assert httpx.get(f"{url}/healthz", timeout=10).json() == {"status": "ok"}
    read_until(worker.stderr, seen_worker, '"worker.started"')
    ready = httpx.get(f"{url}/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    samples = scrape_url(url)
    assert value(samples, "segmentsync_workers_alive") == 1
    assert value(samples, "segmentsync_runs_queued") == 0

    # serve: /healthz, /readyz with its worker alive
    seen_serve: list[str] = []
    running = json.loads(read_until(serve.stderr, seen_serve, "Uvicorn running on"))["message"]
    base = running.split(" on ", 1)[1].split(" ")[0]
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    ready = httpx.get(f"{base}/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["workers"]["ok"]  # serve runs a worker: it must be alive

    worker_lines = stop(worker, seen_worker)
    assert "worker.stopped" in [line.get("event") for line in worker_lines]
    assert any(line["logger"].startswith("uvicorn") for line in worker_lines)  # uvicorn's own: JSON too
    messages = [line["message"] for line in stop(serve, seen_serve)]
    assert any(message.startswith("stopping:") for message in messages)
    assert "Finished server process" in " ".join(messages)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_metrics_port_in_use_is_refused_with_a_message(runtime: Runtime) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = MetricsServer(runtime, "127.0.0.1", taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="is the port in use"):
            server.start()
