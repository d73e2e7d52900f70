"""What sharing Constant Contact's limits through the metadata store costs a request.

Each request of a Constant Contact destination with a store counts itself and takes its slot in
one transaction on the ``platform_limits`` row (``destinations/shared_limits.py``). Here the rate is
set so high that nobody ever sleeps: what is left is the transaction. Measured for the in-process
bucket (no store), a SQLite file and PostgreSQL, with 1 and 3 processes (each 2 threads) taking
slots of one application at once.

    .venv/bin/python -m benchmarks.bench_shared_limits [--requests 400] [--postgres URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa

from benchmarks.report import publish
from segmentsync.db import create_engine, upgrade
from segmentsync.destinations.ratelimit import DailyQuota, TokenBucket
from segmentsync.destinations.shared_limits import LimitStore, StoreLimits

THREADS = 2
RATE = 1e9  # requests per second: nobody waits, only the bookkeeping is measured


def _take_many(url: str | None, requests: int) -> list[float]:
    """Latencies (ms) of ``requests`` take()+acquire() pairs, over ``THREADS`` threads."""
    engine = create_engine(url) if url else None
    if engine is not None:
        limits: StoreLimits | None = StoreLimits(
            LimitStore(engine, 10**9), key="bench", platform="constant_contact", rate=RATE,
            daily=10**9, sleep=time.sleep, name="bench",
        )  # fmt: skip
    else:
        limits = None
    bucket = TokenBucket(RATE, clock=time.time, sleep=time.sleep)
    quota = DailyQuota(10**9, clock=time.time, name="bench")

    def one(_: int) -> float:
        start = time.perf_counter()
        if limits is not None:
            limits.take()
            limits.acquire()
        else:
            quota.take()
            bucket.acquire()
        return (time.perf_counter() - start) * 1000

    with ThreadPoolExecutor(THREADS) as pool:
        latencies = list(pool.map(one, range(requests)))
    if engine is not None:
        engine.dispose()
    return latencies


def measure(url: str | None, processes: int, requests: int) -> tuple[float, float, float]:
    """(median ms, p95 ms, requests/s of all processes together)."""
    start = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        results = list(pool.map(_take_many, [url] * processes, [requests] * processes))
    elapsed = time.perf_counter() - start
    latencies = sorted(x for result in results for x in result)
    p95 = latencies[int(len(latencies) * 0.95)]
    return statistics.median(latencies), p95, processes * requests / elapsed


def postgres_database(server: str) -> str:
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text('DROP DATABASE IF EXISTS "segmentsync_bench_limits" WITH (FORCE)'))
        conn.execute(sa.text('CREATE DATABASE "segmentsync_bench_limits"'))
    admin.dispose()
    return f"{server}/segmentsync_bench_limits"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="per process")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-limits-"))
    stores = {"in-process (no store)": None, "SQLite file": f"sqlite:///{folder / 'store.db'}"}
    if args.postgres:
        stores["PostgreSQL"] = postgres_database(args.postgres)
    for url in stores.values():
        if url:
            engine = create_engine(url)
            upgrade(engine)
            engine.dispose()
    rows = []
    for name, url in stores.items():
        for processes in (1, 3):
            median, p95, throughput = measure(url, processes, args.requests)
            rows.append((name, processes, f"{median:.2f}", f"{p95:.2f}", f"{throughput:,.0f}"))
    publish(
        "shared_limits",
        "Shared rate limit and daily quota: the cost of one request's bookkeeping",
        ["limits kept in", "processes", "median ms", "p95 ms", "requests/s, all processes"],
        rows,
        notes=f"{args.requests} requests per process over {THREADS} threads; the rate so high that "
        "nobody sleeps. Constant Contact allows 4 requests/s per application, so one request's "
        "bookkeeping is spent once every 250 ms.",
    )


if __name__ == "__main__":
    main()
