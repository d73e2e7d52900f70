"""A year in production: every UI page and every API GET on a year-shaped store (``benchmarks/year.py``),
the rows of a 1,000,000-member run (any page, filtered, searched, the CSV), the serving process's memory
and the store's size.

Everything goes through a real ``segmentsync serve --no-scheduler --workers 0`` over loopback HTTP,
one client, ``--requests`` requests per URL (p50 / p95 / max). The store is built once into
``benchmarks/.work/year-<store>/`` (kept out of git) and reused: a reused store gets fresh sandbox
credentials and lists (the sandbox keeps nothing between starts).

Run: ``.venv/bin/python -m benchmarks.bench_year [--store sqlite|postgresql] [--scale full|small]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from importlib import import_module
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from cryptography.fernet import Fernet

from benchmarks import bench_load, year
from benchmarks.measure import free_port, wait_ready
from benchmarks.report import publish
from segmentsync.auth.models import Role, User
from segmentsync.connections import service as connections
from segmentsync.connections.models import Connection, ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionUpdate, TokenAuth
from segmentsync.db import create_engine, transaction
from segmentsync.exports.models import Export
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.settings import Settings
from segmentsync.web.app import VIEWS

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
POSTGRES = os.environ.get("SEGMENTSYNC_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
CLI = str(Path(sys.executable).with_name("segmentsync"))
PASSED_ON = (
    "SEGMENTSYNC_WORKER_NICE",
    "SEGMENTSYNC_API_THREADS",
    "SEGMENTSYNC_WEB_PROCESSES",
    "SEGMENTSYNC_DATABASE_POOL_SIZE",
    "SEGMENTSYNC_DATABASE_POOL_OVERFLOW",
)  # to serve and the workers, when set
SKIP = ("/oauth/", "/rows.csv", "/sign-in", "/new", "/edit")  # measured apart, or forms without data
PARAM = re.compile(r"\{(\w+)\}")


# ---------------------------------------------------------------- what to ask


def page_paths() -> list[str]:
    """Every GET page of the web UI (path templates)."""

    def walk(routes: Any, prefix: str = "") -> Iterator[str]:
        for route in routes:
            if hasattr(route, "methods"):
                if "GET" in route.methods:
                    yield prefix + route.path
            elif hasattr(route, "original_router"):  # an included router
                yield from walk(
                    route.original_router.routes,
                    prefix + (getattr(route.include_context, "prefix", "") or ""),
                )

    return [
        path for name in VIEWS for path in walk(import_module(f"segmentsync.web.views.{name}").router.routes)
    ]


def api_paths(spec: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Every GET of the API (path template, the actions it requires)."""
    return [
        (path, operations["get"].get("x-required-actions", []))
        for path, operations in spec["paths"].items()
        if "get" in operations
    ]


def ids(store: year.Store, session_lists: dict[str, str]) -> dict[str, list[str]]:
    full, again = store.big_runs
    return {
        "run_id": [str(again), str(full), str(store.runs // 2)],
        "export_id": [str(store.cron_export), str(store.big_export), str(store.exports[0])],
        "segment_id": ["1"],
        "connection_id": ["1", "2"],
        "list_id": [session_lists.get("campaign_monitor", "")],
        "user_id": ["1"],
        "entry_id": ["1"],
    }


def fill(template: str, values: dict[str, list[str]]) -> list[str]:
    """The URLs of a path template, one per id to try (paths with unknown parameters: none)."""
    names = PARAM.findall(template)
    if any(name not in values for name in names):
        return []
    if template.endswith(("/lists/{list_id}", "/custom-fields")):
        return [template.replace("{connection_id}", "1").replace("{list_id}", values["list_id"][0])]
    count = max((len(values[name]) for name in names), default=1)
    return [
        PARAM.sub(lambda m, n=n: values[m[1]][min(n, len(values[m[1]]) - 1)], template) for n in range(count)
    ]  # type: ignore[misc]


def targets(spec: dict[str, Any], store: year.Store, lists: dict[str, str]) -> list[tuple[str, str]]:
    values = ids(store, lists)
    found = []
    for template in page_paths():
        if not any(part in template for part in SKIP):
            found += [("page", url) for url in fill(template, values)]
    for template, _actions in api_paths(spec):
        if not any(part in template for part in SKIP):
            found += [("api", url) for url in fill(template, values)]
    return found


def rows_urls(store: year.Store) -> list[tuple[str, str]]:
    """A 1,000,000-row run's rows: pages at the start, middle and end, filters, searches."""
    full, again = store.big_runs
    urls = []
    for run, label in ((again, "unchanged re-run"), (full, "full run")):
        base = f"/api/v1/runs/{run}/rows?limit=50"
        urls += [
            (f"{label}: first page", base),
            (f"{label}: offset 500,000", f"{base}&offset=500000"),
            (f"{label}: last page (offset 999,950)", f"{base}&offset=999950"),
            (f"{label}: cursor at 500,000", f"{base}&cursor={_cursor(500_000)}"),
            (f"{label}: outcome=unchanged, offset 900,000", f"{base}&outcome=unchanged&offset=900000"),
            (f"{label}: outcome=new, offset 900,000", f"{base}&outcome=new&offset=900000"),
            (f"{label}: outcome=rejected", f"{base}&outcome=rejected"),
            (f"{label}: outcome=invalid", f"{base}&outcome=invalid"),
            (f"{label}: search 'person654321'", f"{base}&email=person654321"),
            (f"{label}: search '4321@' (100 matches)", f"{base}&email=4321@"),
            (f"{label}: UI page, offset 500,000", f"/runs/{run}?offset=500000"),
            (f"{label}: UI page, search '4321@'", f"/runs/{run}?email=4321@"),
        ]
    return urls


def _cursor(seq: int) -> str:
    from segmentsync.api.pagination import encode_cursor

    return encode_cursor((seq,))


# ---------------------------------------------------------------- the store


def _settings(where: Path, store: str, sandbox: Sandbox) -> tuple[Settings, bool]:
    """The store's settings (kept beside it), and whether it is built already."""
    kept = where / "settings.json"
    saved = json.loads(kept.read_text()) if kept.exists() else None
    url = f"sqlite:///{where / 'store.db'}" if store == "sqlite" else f"{POSTGRES}/segmentsync_year"
    secret = saved["secret_key"] if saved else Fernet.generate_key().decode()
    settings = Settings(data_dir=where, secret_key=secret, database_url=url,
                        campaign_monitor_api_url=sandbox.campaign_monitor_api,
                        campaign_monitor_oauth_url=sandbox.campaign_monitor_oauth,
                        constant_contact_api_url=sandbox.constant_contact_api,
                        constant_contact_oauth_url=sandbox.constant_contact_oauth)  # fmt: skip
    return settings, bool(saved and saved.get("built"))


def prepare(store: str, scale: str, sandbox: Sandbox) -> tuple[Settings, year.Store, dict[str, str], float]:
    """Build the store once (seconds it took), or give a built one fresh sandbox credentials."""
    where = WORK / f"year-{store}-{scale}"
    where.mkdir(parents=True, exist_ok=True)
    settings, built = _settings(where, store, sandbox)
    took = 0.0
    if not built:
        if store == "postgresql":
            admin = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text('DROP DATABASE IF EXISTS "segmentsync_year" WITH (FORCE)'))
                conn.execute(sa.text('CREATE DATABASE "segmentsync_year"'))
            admin.dispose()
        else:
            (where / "store.db").unlink(missing_ok=True)
        started = time.perf_counter()
        runtime = Runtime.open(settings)
        built_store = year.build(runtime, sandbox, year.FULL if scale == "full" else year.SMALL)
        took = time.perf_counter() - started
        runtime.close()
        (where / "settings.json").write_text(json.dumps({
            "secret_key": settings.secret_key.get_secret_value() if settings.secret_key else "", "built": True,
            "store": built_store.__dict__ | {"users": {k.value: v for k, v in built_store.users.items()}},
            "build_seconds": took,
        }))  # fmt: skip
    saved = json.loads((where / "settings.json").read_text())
    kept = saved["store"]
    result = year.Store(**{**kept, "users": {Role(k): v for k, v in kept["users"].items()},
                           "big_runs": tuple(kept["big_runs"])})  # fmt: skip
    lists = repoint(settings, sandbox)
    return settings, result, lists, saved["build_seconds"]


def repoint(settings: Settings, sandbox: Sandbox) -> dict[str, str]:
    """Fresh credentials and lists in this sandbox for the store's two connections and its exports."""
    sandbox.cc_faults(requests_per_second=None, instant_activities=True)
    client = sandbox.create_cm_client("A Year Ltd")
    account = sandbox.create_cc_account("A Year Inc")
    lists = {
        "campaign_monitor": httpx.post(f"{sandbox.campaign_monitor_api}/lists/{client['ClientID']}.json",
                                       json={"Title": "Everyone"}, auth=(client["ApiKey"], "x"), timeout=30).json(),
        "constant_contact": httpx.post(f"{sandbox.constant_contact_api}/contact_lists", json={"name": "Everyone"},
                                       headers={"Authorization": f"Bearer {account['access_token']}"}, timeout=30).json()["list_id"],
    }  # fmt: skip
    runtime = Runtime.open(settings, migrate=False)
    try:
        with transaction(runtime.sessions) as session:
            admin = session.scalar(sa.select(User).where(User.email == "admin0@example.com"))
            assert admin is not None
            for connection in session.scalars(sa.select(Connection)):
                if connection.type is ConnectionType.CAMPAIGN_MONITOR:
                    auth: Any = ApiKeyAuth(api_key=client["ApiKey"], client_id=client["ClientID"])
                    platform = "campaign_monitor"
                else:
                    auth = TokenAuth(access_token=account["access_token"], refresh_token=account["refresh_token"],
                                     oauth_client_id=account["client_id"], oauth_client_secret=account["client_secret"])  # fmt: skip
                    platform = "constant_contact"
                connections.update(session=session, runtime=runtime, connection=connection,
                                   data=ConnectionUpdate(auth=auth), actor=admin)  # fmt: skip
                session.execute(
                    sa.update(Export)
                    .where(Export.connection_id == connection.id)
                    .values(list_id=lists[platform])
                )
    finally:
        runtime.close()
    return lists


def store_size(settings: Settings) -> dict[str, int]:
    """Bytes of the store and of its biggest tables."""
    engine = create_engine(settings.database_url or "")
    sizes: dict[str, int] = {}
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            sizes["total"] = int(conn.scalar(sa.text("SELECT pg_database_size(current_database())")) or 0)
            for table in ("run_members", "run_unchanged", "delivered", "runs", "audit_log"):
                sizes[table] = int(conn.scalar(sa.text(f"SELECT pg_total_relation_size('{table}')")) or 0)
        else:
            path = Path((settings.database_url or "").removeprefix("sqlite:///"))
            sizes["total"] = path.stat().st_size + sum(
                p.stat().st_size for p in path.parent.glob(path.name + "-wal")
            )
            try:
                for table in ("run_members", "run_unchanged", "delivered", "runs", "audit_log"):
                    sizes[table] = int(
                        conn.scalar(
                            sa.text("SELECT sum(pgsize) FROM dbstat WHERE name = :t OR tbl_name = :t"),
                            {"t": table},
                        )
                        or 0
                    )
            except sa.exc.OperationalError:  # no dbstat in this SQLite
                pass
        sizes["runs_with_rows"] = int(conn.scalar(sa.text(
            "SELECT count(*) FROM runs WHERE id IN (SELECT run_id FROM run_unchanged UNION SELECT DISTINCT run_id FROM run_members)")) or 0)  # fmt: skip
    engine.dispose()
    return sizes


# ---------------------------------------------------------------- measuring


class Rss:
    """The resident memory of the largest of ``serve``'s web processes (with ``--processes N``
    any of them may answer), sampled every 20 ms (peak since ``reset``)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self.pids = web_processes(pid)
        threading.Thread(target=self._watch, daemon=True).start()

    def now(self) -> float:
        largest = 0.0
        for pid in self.pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    largest = max(largest, int(line.split()[1]) / 1024)
        return largest

    def reset(self) -> float:
        self.pids = web_processes(self.pid)  # all started by now
        self.peak = self.now()
        return self.peak

    def cpu(self) -> float:
        """CPU seconds all the web processes have used."""
        return sum(cpu_seconds(pid) for pid in self.pids)

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.now())
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()


def timed(client: httpx.Client, url: str, count: int) -> tuple[list[float], int]:
    took, status = [], 0
    for _ in range(count):
        started = time.perf_counter()
        answer = client.get(url)
        took.append(time.perf_counter() - started)
        status = answer.status_code if answer.status_code != 200 else status or 200
    return took, status


def quantiles(took: list[float]) -> list[str]:
    ordered = sorted(took)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return [f"{statistics.median(ordered) * 1000:.0f}", f"{p95 * 1000:.0f}", f"{ordered[-1] * 1000:.0f}"]


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) the process has used: what a download costs the server, whatever
    else the machine's cores are doing."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def csv_speed(client: httpx.Client, url: str, rss: Rss) -> tuple[int, float, float, float]:
    """(rows, seconds, RSS growth MB, the server's CPU seconds) of one CSV download."""
    before = rss.reset()
    cpu = rss.cpu()
    started = time.perf_counter()
    lines = 0
    with client.stream("GET", url) as answer:
        for chunk in answer.iter_bytes():
            lines += chunk.count(b"\n")
    return lines - 1, time.perf_counter() - started, rss.peak - before, rss.cpu() - cpu


# ---------------------------------------------------------------- readers while exports run

LOAD_EXPORTS = 20
LOAD_READERS = 50


def year_reads(store: year.Store, run_ids: list[int]) -> bench_load.Choose:
    """What people read in a year-old store while exports run: the runs list, a run and a page of
    its rows (the new runs' and the 1,000,000-row runs', first and deep pages), the exports, the
    audit log (API token); one reader in five the UI's run, runs, exports and audit pages."""
    full, again = store.big_runs
    old = [store.runs // 2, store.runs // 3, again, full]

    def choose(rng: random.Random, page_reader: bool) -> tuple[str, str, bool]:
        run_id = rng.choice(run_ids or old) if rng.random() < 0.5 else rng.choice(old)
        if page_reader:
            return rng.choice([("UI run page", f"/runs/{run_id}", False), ("UI exports", "/exports", False),
                               ("UI export", f"/exports/{rng.choice(store.exports)}", False),
                               ("UI audit", "/audit", False)])  # fmt: skip
        return rng.choice([
            ("GET runs", "/api/v1/runs?limit=50", True),
            ("GET run", f"/api/v1/runs/{run_id}", True),
            ("GET run rows", f"/api/v1/runs/{run_id}/rows?limit=50", True),
            ("GET 1M run rows, offset 500,000", f"/api/v1/runs/{rng.choice([full, again])}/rows?limit=50&offset=500000", True),
            ("GET exports", "/api/v1/exports?limit=50", True),
            ("GET audit", "/api/v1/audit?limit=50", True),
        ])  # fmt: skip

    return choose


def _niceness(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[16]
    except OSError:  # not Linux, or gone
        return "?"


def warm(base: str, token: str, cookie: dict[str, str], choose: bench_load.Choose) -> None:
    """Each kind of read once, one after another, before anything is measured: a freshly started
    ``serve`` compiles its templates and expands the 1,000,000-row run's unchanged members on
    the first requests (its page walk, when measured first, did that too)."""
    rng = random.Random(1)
    seen: set[str] = set()
    with httpx.Client(base_url=base, timeout=120, cookies=cookie) as client:
        for _ in range(400):
            label, url, api = choose(rng, rng.random() < 0.3)
            key = url if "1M" in label else label  # both 1,000,000-row runs
            if key in seen:
                continue
            seen.add(key)
            client.get(url, headers={"Authorization": f"Bearer {token}"} if api else {})


def waited_for_a_core(pid: int) -> float:
    """Seconds the process's threads have spent runnable but waiting for a core (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):  # a thread that just ended
            continue
    return total / 1e9


def web_processes(serve: int) -> list[int]:
    """``serve`` and the web processes it started (``serve --processes N``)."""
    found = [serve]
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == serve \
                    and b"spawn_main" in (entry / "cmdline").read_bytes():  # fmt: skip
                found.append(int(entry.name))
        except OSError:  # ended meanwhile
            continue
    return found


def store_sessions() -> int:
    """Sessions (connections) the year's PostgreSQL database has had since its statistics began."""
    engine = create_engine(f"{POSTGRES}/postgres")
    try:
        with engine.connect() as conn:
            return int(conn.scalar(sa.text(
                "SELECT sessions FROM pg_stat_database WHERE datname = 'segmentsync_year'")) or 0)  # fmt: skip
    finally:
        engine.dispose()


def machine_cpu() -> tuple[float, float]:
    """(busy, all) CPU seconds of the machine's cores since boot (/proc/stat; idle and iowait are
    not busy)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK"), sum(ticks) / os.sysconf(
        "SC_CLK_TCK"
    )


def postgres_cpu() -> float:
    """CPU seconds used by the PostgreSQL server's processes now running (backends that began and
    ended between two readings are not counted)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                total += cpu_seconds(int(entry.name))
        except OSError:  # ended meanwhile
            continue
    return total


class Phase:
    """A phase's wall seconds, the CPU seconds ``serve`` (all its web processes) and the workers
    used, the seconds ``serve``'s threads waited for a core, the load average, on PostgreSQL the
    store connections opened meanwhile; and where the rest of the machine's CPU went: PostgreSQL,
    the sandbox's emulators and this benchmark's own readers (all on the same cores)."""

    def __init__(self, serve: int, workers: list[int], dialect: str, sandbox: int) -> None:
        self.web = web_processes(serve)
        self.pids = [*self.web, *workers]
        self.started, self.cpu = time.perf_counter(), [cpu_seconds(p) for p in self.pids]
        self.others = [cpu_seconds(sandbox), cpu_seconds(os.getpid()), postgres_cpu(), *machine_cpu()]
        self.sandbox = sandbox
        self.waited = sum(map(waited_for_a_core, self.web))
        self.load = [os.getloadavg()[0]]
        self.seconds, self.used = 0.0, [0.0 for _ in self.pids]
        self.sessions = store_sessions() if dialect == "postgresql" else None

    def end(self) -> Phase:
        self.seconds = time.perf_counter() - self.started
        self.used = [cpu_seconds(p) - c for p, c in zip(self.pids, self.cpu, strict=True)]
        now = [cpu_seconds(self.sandbox), cpu_seconds(os.getpid()), postgres_cpu(), *machine_cpu()]
        self.others = [b - a for a, b in zip(self.others, now, strict=True)]
        self.waited = sum(map(waited_for_a_core, self.web)) - self.waited
        self.load.append(os.getloadavg()[0])
        if self.sessions is not None:
            self.sessions = store_sessions() - self.sessions
        return self

    def note(self, name: str, requests: int) -> str:
        web = sum(self.used[: len(self.web)])
        opened = "" if self.sessions is None else f"; {self.sessions} store connections opened"
        sandbox, readers, postgres, busy, cores = self.others
        per = 1000 / max(requests, 1)
        return (f"{name}: {self.seconds:.0f} s, {requests / self.seconds:.0f} reads/s, `serve` used "
                f"{web:.1f} CPU s ({web * per:.0f} ms a read) and its threads "
                f"waited {self.waited:.1f} s for a core, the workers "
                f"{sum(self.used[len(self.web):]):.1f} CPU s; the machine {busy:.1f} of {cores:.1f} CPU s "
                f"({busy * per:.0f} ms a read), of which PostgreSQL {postgres:.1f}, the emulators {sandbox:.1f}, "
                f"the 50 readers themselves {readers:.1f} ({readers * per:.1f} ms a read); "
                f"load average {self.load[0]:.1f} → {self.load[1]:.1f}{opened}")  # fmt: skip


def load(stack: ExitStack, env: dict[str, str], base: str, store: year.Store, token: str,
         cookie: dict[str, str], dialect: str, serve: int, sandbox: int) -> tuple[list[list[object]], str]:  # fmt: skip
    """50 readers idle for 10 s, then while 20 of the store's exports run (two worker processes
    of 10 on PostgreSQL; one worker on SQLite, which has one writer): table rows and a note."""
    processes, per = (2, LOAD_EXPORTS // 2) if dialect == "postgresql" else (1, 1)
    logs = [WORK / f"load-worker-{n}.log" for n in range(processes)]
    workers = [bench_load.start(stack, ["worker", "--count", str(per)], env, log).pid for log in logs]
    ready_by = time.monotonic() + 120  # the workers' start-up is not the readers' idle time
    while not all(log.exists() and b"waiting for runs" in log.read_bytes() for log in logs):
        if time.monotonic() > ready_by:
            raise SystemExit(f"the workers did not start: see {', '.join(map(str, logs))}")
        time.sleep(0.2)
    chosen = [e for e in store.exports if e % 7 and e % 17]  # add/update ones, scheduled
    outcome: dict[str, Any] = {}
    timed_phases: dict[str, Phase] = {}
    warm(base, token, cookie, year_reads(store, []))

    async def phases() -> tuple[bench_load.Latencies, bench_load.Latencies]:
        async with httpx.AsyncClient(
            base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}
        ) as api:

            async def idle_over() -> None:
                await asyncio.sleep(10)

            timed_phases["idle"] = Phase(serve, workers, dialect, sandbox)
            idle = await bench_load.read_while(
                base, token, cookie, year_reads(store, []), LOAD_READERS, idle_over
            )
            timed_phases["idle"].end()
            started = time.perf_counter()
            run_ids: list[int] = []
            for export_id in chosen:  # the year left some exports with a run queued or running: others then
                if len(run_ids) == LOAD_EXPORTS:
                    break
                answer = await api.post(f"/api/v1/exports/{export_id}/runs", json={})
                if answer.status_code == 201:
                    run_ids.append(answer.json()["id"])

            async def runs_over() -> None:
                while True:
                    try:
                        runs = [(await api.get(f"/api/v1/runs/{r}")).json() for r in run_ids]
                        statuses = [run["status"] for run in runs]
                    except (httpx.TransportError, ValueError, KeyError):  # a closed keep-alive; a 5xx
                        await asyncio.sleep(0.5)
                        continue
                    if all(s in bench_load.FINAL for s in statuses):
                        members = {
                            k: sum(run["counts"][k] for run in runs) for k in ("new", "updated", "unchanged")
                        }
                        outcome.update(seconds=time.perf_counter() - started, statuses=sorted(set(statuses)),
                                       members=members)  # fmt: skip
                        return
                    await asyncio.sleep(0.5)

            timed_phases["busy"] = Phase(serve, workers, dialect, sandbox)
            busy = await bench_load.read_while(
                base, token, cookie, year_reads(store, run_ids), LOAD_READERS, runs_over
            )
            timed_phases["busy"].end()
        return idle, busy

    idle, busy = asyncio.run(phases())
    rows = bench_load.table_of(idle, busy, f"{LOAD_EXPORTS} exports running")
    note = (
        f"{LOAD_EXPORTS} of the store's exports (add/update, about 5,000 profiles each, half Campaign Monitor, half "
        f"Constant Contact) run by {processes} `segmentsync worker --count {per}` process(es) at niceness "
        f"{_niceness(workers[0])}; all ended in "
        f"{outcome['seconds']:.1f} s, statuses {', '.join(outcome['statuses'])}; their members "
        f"{', '.join(f'{n:,} {k}' for k, n in outcome['members'].items())} (the store's delivered state: a re-run "
        f"sends only what changed). Meanwhile {LOAD_READERS} clients "
        f"(asyncio + aiohttp, keep-alive) read in a loop over loopback HTTP from `segmentsync serve --workers 0` "
        f"in {len(timed_phases['idle'].web)} web process(es) (pool {os.environ.get('SEGMENTSYNC_DATABASE_POOL_SIZE', 'default')} + "
        f"{os.environ.get('SEGMENTSYNC_DATABASE_POOL_OVERFLOW', 'default')}): "
        "four in five through the API (token), one in five the UI's pages (session cookie). 'idle': the same "
        "readers for 10 s before any run started. Everything shares the machine's 2 cores. "
        + timed_phases["idle"].note("Idle", sum(map(len, idle.by_kind.values())))
        + "; "
        + timed_phases["busy"].note("while the exports ran", sum(map(len, busy.by_kind.values())))
        + "."
    )
    return rows, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--scale", choices=["full", "small"], default="full")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--rows-requests", type=int, default=20, help="per URL of the big run's rows")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--only", default="", help="measure only the URLs and labels matching this regex")
    parser.add_argument("--csv-runs", default="unchanged,full", help="which runs' CSV to download")
    parser.add_argument("--label", default="", help="a note on the code measured (e.g. 'before')")
    parser.add_argument("--load", action="store_true", help="also: 50 readers while 20 exports run")
    parser.add_argument("--load-only", action="store_true", help="only the readers-while-exports phase")
    parser.add_argument("--no-publish", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with ExitStack() as stack:
        sandbox = stack.enter_context(Sandbox.start())
        settings, store, lists, build_seconds = prepare(args.store, args.scale, sandbox)
        if args.build_only:
            print(f"built in {build_seconds:.0f} s: {store_size(settings)}")
            return
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTSYNC_")}
        env.update(SEGMENTSYNC_DATA_DIR=str(settings.data_dir), SEGMENTSYNC_DATABASE_URL=settings.database_url or "",
                   SEGMENTSYNC_SECRET_KEY=settings.secret_key.get_secret_value() if settings.secret_key else "",
                   SEGMENTSYNC_PORT=str(port), SEGMENTSYNC_LOG_LEVEL="WARNING",
                   SEGMENTSYNC_CAMPAIGN_MONITOR_API_URL=sandbox.campaign_monitor_api,
                   SEGMENTSYNC_CONSTANT_CONTACT_API_URL=sandbox.constant_contact_api,
                   SEGMENTSYNC_CONSTANT_CONTACT_OAUTH_URL=sandbox.constant_contact_oauth)  # fmt: skip
        for name in PASSED_ON:  # settings to compare (e.g. SEGMENTSYNC_WORKER_NICE=0 against the default)
            if name in os.environ:
                env[name] = os.environ[name]
        log = stack.enter_context((WORK / f"serve-{args.store}.log").open("wb"))
        if os.environ.get("SEGMENTSYNC_BENCH_SERVE_PYTHONPATH"):  # another checkout's code (e.g. before)
            env["PYTHONPATH"] = os.environ["SEGMENTSYNC_BENCH_SERVE_PYTHONPATH"]
        serve = subprocess.Popen(
            [CLI, "serve", "--no-scheduler", "--workers", "0"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        stack.callback(serve.wait, 30)
        stack.callback(serve.terminate)
        wait_ready(base)
        rss = Rss(serve.pid)
        stack.callback(rss.stop)
        api = stack.enter_context(
            httpx.Client(base_url=base, timeout=600, headers={"Authorization": f"Bearer {store.admin_token}"})
        )
        pages = stack.enter_context(httpx.Client(base_url=base, timeout=600))
        signed = pages.post(
            "/api/v1/session", json={"email": "admin0@example.com", "password": year.PASSWORD}
        )
        assert signed.status_code < 400, signed.text
        rest = rss.reset()
        load_before = os.getloadavg()[0]
        walk_rows, rows_rows, csv_rows, slow = (
            ([], [], [], []) if args.load_only else measure_reads(args, api, pages, store, lists, rss)
        )
        walk_peak = rss.peak
        load_after = os.getloadavg()[0]
        load_rows: list[list[object]] = []
        load_note = ""
        if args.load or args.load_only:
            cookie = dict(signed.cookies)
            load_rows, load_note = load(
                stack, env, base, store, store.admin_token, cookie, args.store, serve.pid, sandbox.process.pid
            )
        sizes = store_size(settings)
    result = {"walk": walk_rows, "rows": rows_rows, "csv": csv_rows, "load": load_rows, "load_note": load_note, "rss_rest": rest,
              "rss_walk_peak": walk_peak, "sizes": sizes, "build_seconds": build_seconds,
              "worst_p95_ms": max(slow, default=0) * 1000}  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    mb = 1 << 20
    notes = (
        f"{args.label} Store: {args.store}, scale {args.scale} (built in {build_seconds:.0f} s); "
        f"{sizes['total'] / mb:,.0f} MB in all ({', '.join(f'{k} {v / mb:,.0f} MB' for k, v in sizes.items() if k not in ('total', 'runs_with_rows'))}); "
        f"{sizes['runs_with_rows']:,} runs keep their rows. `serve` RSS (its largest web process) at rest {rest:.0f} MB, peak during the walk "
        f"{walk_peak:.0f} MB. One client, {args.requests} requests per URL, loopback HTTP; the machine (2 cores) was "
        f"shared with other work while measured (load average {load_before:.1f} at the start, {load_after:.1f} at "
        "the end): compare figures measured in the same minutes."
    )  # fmt: skip
    if args.no_publish:
        print(json.dumps(result, indent=1))
        return
    key = f"year-{args.store}"
    if walk_rows:
        publish(f"{key}-walk", f"A year in production ({args.store}): every page and API GET",
                ["kind", "URL", "status", "p50 ms", "p95 ms", "max ms"], walk_rows, notes)  # fmt: skip
    if rows_rows:
        publish(f"{key}-rows", f"A year in production ({args.store}): a 1,000,000-row run's rows",
                ["request", "status", "p50 ms", "p95 ms", "max ms"], rows_rows,
                f"{args.label} {args.rows_requests} requests per URL; load average {load_before:.1f} → {load_after:.1f} "
                "over the walk, the rows and the CSV.")  # fmt: skip
    if csv_rows:
        publish(f"{key}-csv", f"A year in production ({args.store}): the rows CSV of a 1,000,000-row run",
                ["run", "rows", "seconds", "rows/s", "serve RSS growth MB", "serve CPU s", "load average"], csv_rows)  # fmt: skip
    if load_rows:
        publish(f"{key}-load", f"A year in production ({args.store}): {LOAD_READERS} readers while {LOAD_EXPORTS} exports run",
                ["phase", "request", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"], load_rows,
                f"{args.label} {load_note}")  # fmt: skip


def measure_reads(
    args: argparse.Namespace,
    api: httpx.Client,
    pages: httpx.Client,
    store: year.Store,
    lists: dict[str, str],
    rss: Rss,
) -> tuple[list[list[Any]], list[list[Any]], list[list[Any]], list[float]]:
    """The page walk, the big runs' rows and their CSV: (walk rows, rows rows, CSV rows, p95s)."""
    spec = api.get("/api/v1/openapi.json").json()
    walk_rows, slow = [], []
    for kind, url in targets(spec, store, lists):
        if not re.search(args.only, url):
            continue
        took, status = timed(pages if kind == "page" else api, url, args.requests)
        walk_rows.append([kind, url, status, *quantiles(took)])
        slow.append(sorted(took)[min(len(took) - 1, int(0.95 * len(took)))])
    rows_rows = []
    for label, url in rows_urls(store):
        if not re.search(args.only, label + " " + url):
            continue
        took, status = timed(pages if url.startswith("/runs/") else api, url, args.rows_requests)
        rows_rows.append([label, status, *quantiles(took)])
    full, again = store.big_runs
    csv_rows = []
    for run, label in ((again, "unchanged re-run"), (full, "full run")):
        if label.split()[0] not in args.csv_runs:
            continue
        count, seconds, growth, cpu = csv_speed(api, f"/api/v1/runs/{run}/rows.csv", rss)
        load = os.getloadavg()[0]
        csv_rows.append([label, f"{count:,}", f"{seconds:.1f}", f"{count / seconds:,.0f}", f"{growth:.0f}",
                         f"{cpu:.1f}", f"{load:.1f}"])  # fmt: skip
    return walk_rows, rows_rows, csv_rows, slow


if __name__ == "__main__":
    main()
