"""Load: 20 exports running at once on two worker processes (PostgreSQL), while 50 API clients read
runs; how responsive the API (and the run page of the UI) stays: p50 / p95 / p99 latency.

Everything is a real process talking over loopback HTTP: the sandbox (both emulators), the web
app (`segmentsync serve --workers 0`), two `segmentsync worker --count 10` processes, and the
readers here (asyncio, one aiohttp client each). First the readers run alone for a few seconds
(the baseline), then the 20 runs start and the readers go on until every run has ended.

Run: ``.venv/bin/python -m benchmarks.bench_load`` (needs PostgreSQL at 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import duckdb
import httpx
import sqlalchemy as sa
from cryptography.fernet import Fernet

from benchmarks.measure import free_port, wait_ready
from benchmarks.report import publish
from segmentsync.auth import service as auth_service
from segmentsync.auth.models import Role, User
from segmentsync.connections import service as connections
from segmentsync.connections.models import ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionCreate, TokenAuth
from segmentsync.db import create_engine, transaction, upgrade
from segmentsync.exports import service as exports
from segmentsync.exports.schemas import ExportCreate
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.segments.models import Segment
from segmentsync.settings import Settings

POSTGRES = os.environ.get("SEGMENTSYNC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
CLI = str(Path(sys.executable).with_name("segmentsync"))
PASSWORD = "load test password"  # noqa: S105  # a throwaway user of a throwaway database
FINAL = {"succeeded", "succeeded_with_rejections", "failed", "cancelled", "skipped", "awaiting_confirmation"}


@dataclass
class Plan:
    exports: int = 20
    rows_per_export: int = 10_000
    readers: int = 50
    worker_processes: int = 2
    baseline_seconds: float = 10.0


@dataclass
class Latencies:
    by_kind: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))


# ---------------------------------------------------------------- the world


def _database(name: str) -> str:
    admin = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = f"{POSTGRES}/{name}"
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _drop_database(name: str) -> None:
    admin = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _profiles(settings: Settings, plan: Plan) -> None:
    con = duckdb.connect(str(settings.data_dir / "profiles.duckdb"))
    con.execute(
        f"""CREATE OR REPLACE TABLE profiles AS
        SELECT i AS profile_id, 'p' || i || '@example.com' AS email, 'First' || i AS first_name,
               'Last' || i AS last_name, i % {plan.exports} AS grp
        FROM range(1, {plan.exports * plan.rows_per_export + 1}) t(i)"""
    )
    con.close()


def _post(url: str, body: dict[str, Any], **kwargs: Any) -> Any:
    answer = httpx.post(url, json=body, timeout=30, **kwargs)
    answer.raise_for_status()
    return answer.json()


def _world(runtime: Runtime, sandbox: Sandbox, plan: Plan) -> str:
    """Users, two connections, a list and a segment per export, the exports; returns the admin's token."""
    sandbox.cc_faults(requests_per_second=None, instant_activities=True)
    client = sandbox.create_cm_client("Load Ltd")
    account = sandbox.create_cc_account("Load Inc")
    with transaction(runtime.sessions) as session:
        admin = auth_service.create_user(
            session=session, email="admin@example.com", role=Role.ADMIN, actor=None
        )
        auth_service.set_password(session=session, user=admin, new_password=PASSWORD, actor=None)
        _, token = auth_service.create_api_token(
            session=session, user=admin, name="load", actor=None, now=runtime.clock()
        )
        admin_id = admin.id
    drafts = {
        "cm": ConnectionCreate(type=ConnectionType.CAMPAIGN_MONITOR, name="CM", consent=True,
                               auth=ApiKeyAuth(api_key=client["ApiKey"], client_id=client["ClientID"])),
        "cc": ConnectionCreate(type=ConnectionType.CONSTANT_CONTACT, name="CC", consent=True,
                               auth=TokenAuth(access_token=account["access_token"], refresh_token=account["refresh_token"],
                                              oauth_client_id=account["client_id"], oauth_client_secret=account["client_secret"])),
    }  # fmt: skip
    ids = {}
    for key, draft in drafts.items():
        with transaction(runtime.sessions) as session:
            actor = session.get(User, admin_id)
            assert actor is not None
            ids[key] = connections.create(session=session, runtime=runtime, data=draft, actor=actor).id
    for n in range(plan.exports):
        kind = "cm" if n % 2 == 0 else "cc"
        if kind == "cm":
            list_id = _post(f"{sandbox.campaign_monitor_api}/lists/{client['ClientID']}.json", {"Title": f"L{n}"},
                            auth=(client["ApiKey"], "x"))  # fmt: skip
        else:
            list_id = _post(f"{sandbox.constant_contact_api}/contact_lists", {"name": f"L{n}"},
                            headers={"Authorization": f"Bearer {account['access_token']}"})["list_id"]  # fmt: skip
        with transaction(runtime.sessions) as session:
            segment = Segment(
                name=f"Group {n}", rules={"items": [{"column": "grp", "operator": "eq", "value": n}]}
            )
            session.add(segment)
            session.flush()
            segment_id = segment.id
        name_fields = [{"column": "first_name", "target": "Name" if kind == "cm" else "first_name"}]
        form = ExportCreate.model_validate(
            {"name": f"Export {n}", "connection_id": ids[kind], "list_id": list_id, "email_column": "email",
             "segment_ids": [segment_id], "attributes": name_fields, "schedule": "off"}
        )  # fmt: skip
        with runtime.sessions() as session:
            actor = session.get(User, admin_id)
        assert actor is not None
        exports.create(runtime=runtime, data=form, actor=actor)
    return token


# ---------------------------------------------------------------- readers


Choose = Callable[[random.Random, bool], tuple[str, str, bool]]  # (kind, URL, with the token?)


def _runs_reads(run_ids: list[int]) -> Choose:
    """This benchmark's mix: the runs list, one run, a page of its rows (API token); the UI run
    page for a page reader (session cookie)."""

    def choose(rng: random.Random, page_reader: bool) -> tuple[str, str, bool]:
        if page_reader and run_ids:
            return "UI run page", f"/runs/{rng.choice(run_ids)}", False
        if run_ids and rng.random() < 0.6:
            run_id = rng.choice(run_ids)
            return rng.choice([("GET run", f"/api/v1/runs/{run_id}", True),
                               ("GET run rows", f"/api/v1/runs/{run_id}/rows?limit=50", True)])  # fmt: skip
        return "GET runs", "/api/v1/runs?limit=50", True

    return choose


async def _reader(client: aiohttp.ClientSession, token: str, cookie: str, choose: Choose, stop: asyncio.Event,
                  latencies: Latencies, page_reader: bool) -> None:  # fmt: skip
    rng = random.Random()
    by_token = {"Authorization": f"Bearer {token}"}
    by_cookie = {"Cookie": cookie} if page_reader else {}
    while not stop.is_set():
        kind, url, with_token = choose(rng, page_reader)
        started = time.perf_counter()
        try:
            async with client.get(url, headers=by_token if with_token else by_cookie) as answer:
                await answer.read()
                ok = answer.status == 200
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            latencies.by_kind[kind].append(time.perf_counter() - started)
        else:
            latencies.errors[kind] += 1


async def read_while(base: str, token: str, cookie: dict[str, str], choose: Choose, readers: int,
                     until: Any) -> Latencies:  # fmt: skip
    """``readers`` clients (one in five a page reader, with the session cookie) reading what
    ``choose`` picks until ``until()`` returns.

    The readers share the cores they measure, so their client is aiohttp's: 0.11 ms of CPU a
    request where httpx's took 0.83 (the readers took 2.4-2.9 ms of the machine's CPU a read with
    it, 13-20 % of all). The clients are made before any read is timed: made by each reader as it
    started, httpx's (21 ms of CPU each, its TLS context) held this one event loop for a second,
    counted in the first reads of every phase."""
    latencies = Latencies()
    stop = asyncio.Event()
    sent_cookie = "; ".join(f"{name}={value}" for name, value in cookie.items())
    clients = [
        aiohttp.ClientSession(base_url=base, timeout=aiohttp.ClientTimeout(total=60)) for _ in range(readers)
    ]
    try:
        tasks = [
            asyncio.create_task(
                _reader(client, token, sent_cookie, choose, stop, latencies, page_reader=n % 5 == 0)
            )
            for n, client in enumerate(clients)
        ]
        await until()
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        for client in clients:
            await client.close()
    return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


# ---------------------------------------------------------------- processes


def _env(settings: Settings, database_url: str, port: int) -> dict[str, str]:
    assert settings.secret_key is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTSYNC_")}
    env.update(
        SEGMENTSYNC_DATA_DIR=str(settings.data_dir), SEGMENTSYNC_DATABASE_URL=database_url,
        SEGMENTSYNC_SECRET_KEY=settings.secret_key.get_secret_value(), SEGMENTSYNC_PORT=str(port),
        SEGMENTSYNC_CAMPAIGN_MONITOR_API_URL=settings.campaign_monitor_api_url,
        SEGMENTSYNC_CONSTANT_CONTACT_API_URL=settings.constant_contact_api_url,
        SEGMENTSYNC_CONSTANT_CONTACT_OAUTH_URL=settings.constant_contact_oauth_url, SEGMENTSYNC_LOG_LEVEL="WARNING",
    )  # fmt: skip
    return env


def start(stack: ExitStack, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = stack.enter_context(log.open("wb"))
    process = subprocess.Popen([CLI, *args], env=env, stdout=handle, stderr=subprocess.STDOUT)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()

    stack.callback(stop)
    return process


# ---------------------------------------------------------------- the benchmark


def measure(plan: Plan) -> tuple[Latencies, Latencies, dict[str, Any]]:
    name = f"segmentsync_bench_load_{os.getpid()}"
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        sandbox = stack.enter_context(Sandbox.start())
        database_url = _database(name)
        stack.callback(_drop_database, name)
        settings = Settings(data_dir=Path(tmp), secret_key=Fernet.generate_key().decode(), database_url=database_url,
                            campaign_monitor_api_url=sandbox.campaign_monitor_api,
                            constant_contact_api_url=sandbox.constant_contact_api,
                            constant_contact_oauth_url=sandbox.constant_contact_oauth)  # fmt: skip
        _profiles(settings, plan)
        runtime = Runtime.open(settings, migrate=False)
        stack.callback(runtime.close)
        token = _world(runtime, sandbox, plan)
        port = free_port()
        env = _env(settings, database_url, port)
        base = f"http://127.0.0.1:{port}"
        start(stack, ["serve", "--no-scheduler", "--workers", "0"], env, Path(tmp) / "serve.log")
        wait_ready(base)
        cookie = dict(httpx.post(f"{base}/api/v1/session", json={"email": "admin@example.com",
                                                                   "password": PASSWORD}).cookies)  # fmt: skip
        for n in range(plan.worker_processes):
            start(
                stack,
                ["worker", "--count", str(plan.exports // plan.worker_processes)],
                env,
                Path(tmp) / f"w{n}.log",
            )
        return asyncio.run(_phases(base, token, cookie, plan))


async def _phases(
    base: str, token: str, cookie: dict[str, str], plan: Plan
) -> tuple[Latencies, Latencies, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as api:
        exports_ = (await api.get("/api/v1/exports", params={"limit": 100})).json()["items"]

        async def baseline_over() -> None:
            await asyncio.sleep(plan.baseline_seconds)

        idle = await read_while(base, token, cookie, _runs_reads([]), plan.readers, baseline_over)
        started = time.perf_counter()
        run_ids = [
            (await api.post(f"/api/v1/exports/{e['id']}/runs", json={})).json()["id"] for e in exports_
        ]
        outcome: dict[str, Any] = {}

        async def runs_over() -> None:
            while True:
                try:
                    runs = (await api.get("/api/v1/runs", params={"limit": 100})).json()["items"]
                except httpx.TransportError:  # a keep-alive connection the server closed while idle
                    await asyncio.sleep(0.1)
                    continue
                if all(r["status"] in FINAL for r in runs):
                    outcome["seconds"] = time.perf_counter() - started
                    outcome["statuses"] = sorted({r["status"] for r in runs})
                    outcome["rows"] = sum(r["counts"]["new"] + r["counts"]["updated"] for r in runs)
                    outcome["most_running"] = max(outcome.get("most_running", 0), 0)
                    return
                outcome["most_running"] = max(outcome.get("most_running", 0),
                                              sum(r["status"] == "running" for r in runs))  # fmt: skip
                await asyncio.sleep(0.5)

        busy = await read_while(base, token, cookie, _runs_reads(run_ids), plan.readers, runs_over)
    return idle, busy, outcome


def rows_of(label: str, latencies: Latencies) -> list[list[object]]:
    rows: list[list[object]] = []
    for kind in sorted(latencies.by_kind):
        values = latencies.by_kind[kind]
        rows.append([label, kind, f"{len(values):,}", *(f"{percentile(values, q) * 1000:.0f}" for q in (0.5, 0.95, 0.99)),
                     f"{max(values) * 1000:.0f}", latencies.errors.get(kind, 0)])  # fmt: skip
    return rows


def table_of(idle: Latencies, busy: Latencies, busy_label: str) -> list[list[object]]:
    """The table's rows: each kind of read idle and busy, then all reads while busy."""
    every = [v for values in busy.by_kind.values() for v in values]
    rows = rows_of("idle", idle) + rows_of(busy_label, busy)
    rows.append([busy_label, "all reads", f"{len(every):,}",
                 *(f"{percentile(every, q) * 1000:.0f}" for q in (0.5, 0.95, 0.99)),
                 f"{max(every) * 1000:.0f}", sum(busy.errors.values())])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exports", type=int, default=20)
    parser.add_argument("--rows", type=int, default=10_000, help="profiles per export")
    parser.add_argument("--readers", type=int, default=50)
    args = parser.parse_args()
    plan = Plan(exports=args.exports, rows_per_export=args.rows, readers=args.readers)
    idle, busy, outcome = measure(plan)
    rows = table_of(idle, busy, f"{plan.exports} exports running")
    notes = (
        f"{plan.exports} exports of {plan.rows_per_export:,} profiles each (half Campaign Monitor, half Constant "
        f"Contact, one list each) run by {plan.worker_processes} `segmentsync worker --count "
        f"{plan.exports // plan.worker_processes}` processes on PostgreSQL; at most {outcome['most_running']} ran at "
        f"once; all ended in {outcome['seconds']:.1f} s ({outcome['rows'] / outcome['seconds']:,.0f} rows/s), "
        f"statuses {', '.join(outcome['statuses'])}. Meanwhile {plan.readers} clients (asyncio + aiohttp, keep-alive) "
        "read runs in a loop over loopback HTTP from `segmentsync serve --workers 0`: the runs list, one run, "
        "a page of a run's rows (API token), and one in five the run page of the UI (session cookie). Latencies "
        "in ms, measured by the clients. 'idle': the same readers for "
        f"{plan.baseline_seconds:.0f} s before any run started. The sandbox, the web app, both workers and the "
        "readers share the machine's 2 cores: every figure includes waiting for a core."
    )
    title = f"Load: {plan.exports} exports on two workers while {plan.readers} clients read runs"
    publish("load", title,
            ["phase", "request", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"], rows, notes)  # fmt: skip


if __name__ == "__main__":
    main()
