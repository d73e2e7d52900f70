"""Scraping /metrics on a store shaped like a year of use: the target is ≤ 100 ms.

The year-shaped store of ``bench_year`` (73,000 runs, 200 exports, …; built once into
``benchmarks/.work/``, or now if it is not there), with what a busy moment adds: 4 live workers,
2 runs running, 10 queued. A worker's metrics server (``segmentsync worker --metrics-port``:
uvicorn, the same registry and store collector as ``serve``'s ``/metrics``) is scraped over
loopback HTTP by one client, as Prometheus does: without opted-in exports, and with all 200
(``SEGMENTSYNC_METRICS_EXPORTS=*``, the last-success gauge of each). The store's queries alone are
timed too. The rows added are removed afterwards.

Run: ``.venv/bin/python -m benchmarks.bench_metrics [--scrapes N] [--no-publish]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from benchmarks import bench_year
from benchmarks.report import publish
from segmentsync.db import transaction
from segmentsync.exports.models import Export, Run, RunStatus, Trigger
from segmentsync.observe import gauges
from segmentsync.runtime import Runtime
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.scheduling.cli import MetricsServer
from segmentsync.scheduling.models import WorkerBeat
from segmentsync.settings import Settings

TARGET_MS = 100.0
MARK = "bench-metrics"  # the rows this script adds (lease owner / worker names)


def year_settings(store: str) -> Settings:
    where = bench_year.WORK / f"year-{store}-full"
    if not (where / "settings.json").exists() or not json.loads((where / "settings.json").read_text()).get(
        "built"
    ):
        with Sandbox.start() as sandbox:
            bench_year.prepare(store, "full", sandbox)
    saved = json.loads((where / "settings.json").read_text())
    url = (
        f"sqlite:///{where / 'store.db'}" if store == "sqlite" else f"{bench_year.POSTGRES}/segmentsync_year"
    )
    return Settings(data_dir=where, secret_key=saved["secret_key"], database_url=url, log_level="WARNING")


def busy(runtime: Runtime) -> list[int]:
    """4 live workers, 2 runs running under them, 10 queued (of exports with no active run);
    returns the runs' ids."""
    now = runtime.clock()
    active = sa.select(Run.export_id).where(
        Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED_RETRY])
    )
    added = []
    with transaction(runtime.sessions) as session:
        exports = session.execute(
            sa.select(Export.id, Export.name).where(Export.id.not_in(active)).order_by(Export.id).limit(12)
        ).all()
        for n, (export_id, name) in enumerate(exports):
            running = n < 2
            run = Run(
                export_id=export_id, export_name=name, trigger=Trigger.SCHEDULE, created_at=now - timedelta(minutes=n),
                status=RunStatus.RUNNING if running else RunStatus.QUEUED,
                lease_owner=f"{MARK}-{n}" if running else None,
                lease_expires_at=now + timedelta(minutes=1) if running else None,
            )  # fmt: skip
            session.add(run)
            session.flush()
            added.append(run.id)
        for n in range(4):
            session.add(WorkerBeat(name=f"{MARK}-{n}", started_at=now, heartbeat_at=now, run_id=None))
    return added


def tidy(runtime: Runtime, runs: list[int]) -> None:
    with transaction(runtime.sessions) as session:
        session.execute(sa.delete(WorkerBeat).where(WorkerBeat.name.like(f"{MARK}-%")))
        session.execute(sa.delete(Run).where(Run.id.in_(runs)))


def timed(count: int, action: Any) -> list[float]:
    took = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        took.append((time.perf_counter() - started) * 1000)
    return took


def row(label: str, took: list[float], extra: str) -> list[str]:
    ordered = sorted(took)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return [label, f"{statistics.median(took):.1f}", f"{p95:.1f}", f"{max(took):.1f}", extra]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--scrapes", type=int, default=100)
    parser.add_argument("--no-publish", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    settings = year_settings(args.store)
    rows: list[list[str]] = []
    with ExitStack() as stack:
        runtime = Runtime.open(settings)
        stack.callback(runtime.close)
        with runtime.readers() as session:
            runs = session.scalar(sa.select(sa.func.count()).select_from(Run))
            exports = session.scalar(sa.select(sa.func.count()).select_from(Export))
        with runtime.readers() as session:
            before = dict(session.execute(sa.select(Run.status, sa.func.count()).group_by(Run.status)).all())
        stack.callback(tidy, runtime, busy(runtime))
        server = MetricsServer(runtime, "127.0.0.1", 0)
        url = server.start()
        stack.callback(server.stop)
        client = stack.enter_context(httpx.Client(base_url=url, timeout=30))
        for opted, label in (("", "no export opted in"), ("*", f"all {exports} exports opted in")):
            runtime.settings.metrics_exports = opted
            answer = client.get("/metrics")
            assert answer.status_code == 200, answer.text
            queued = before.get(RunStatus.QUEUED, 0) + 10
            assert f"segmentsync_runs_queued {queued:.1f}" in answer.text, answer.text
            assert "segmentsync_workers_alive 4.0" in answer.text, answer.text
            series = sum(1 for line in answer.text.splitlines() if line and not line.startswith("#"))
            for _ in range(5):  # warm: connections, statement caches
                client.get("/metrics")
            scrape = timed(args.scrapes, lambda: client.get("/metrics").raise_for_status())
            queries = timed(args.scrapes, lambda: list(gauges.STORE.collect()))
            rows.append(row(f"GET /metrics, {label}", scrape, f"{series} series, {len(answer.content):,} B"))
            rows.append(row(f"the store's queries alone, {label}", queries, ""))
    worst = max(float(r[2]) for r in rows)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "worst_p95_ms": worst}, indent=1))
    notes = (
        f"Store: {args.store}, the year of `bench_year` ({runs:,} runs, {exports} exports) with 4 live workers, "
        f"2 runs running and 10 queued. {args.scrapes} scrapes each, one client over loopback HTTP, after 5 to warm up. "
        f"Target ≤ {TARGET_MS:.0f} ms: worst p95 {worst:.1f} ms — "
        f"{'met' if worst <= TARGET_MS else 'NOT met'}. The machine (2 cores) was shared with other sessions' work."
    )
    if args.no_publish:
        print(json.dumps(rows, indent=1))
        print(notes)
        return
    publish(
        f"metrics-{args.store}",
        f"Scraping /metrics on a year-shaped store ({args.store})",
        ["what", "p50 ms", "p95 ms", "max ms", "answer"],
        rows,
        notes,
    )


if __name__ == "__main__":
    main()
