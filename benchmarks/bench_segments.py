"""Profiles and segments on the embedded DuckDB store: generate, count a typical segment, stream members.

Targets (issue 4): counting a typical segment over 10,000,000 profiles ≤ 2 s; streaming 1,000,000
members as Arrow record batches ≤ 3 s. Everything goes through the same code the product uses
(``profiles.generate``, ``ProfileSource.count`` / ``members`` / ``stream``), on a fresh data folder.

    .venv/bin/python -m benchmarks.bench_segments [--rows 10000000] [--stream 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from benchmarks.report import publish
from segmentsync.profiles.generate import generate
from segmentsync.profiles.source import ProfileSource
from segmentsync.segments.rules import Group, parse

T = TypeVar("T")
COUNT_TARGET_S = 2.0
STREAM_TARGET_S = 3.0
GENERATE_1M_TARGET_S = 15.0
TYPICAL = {
    "items": [
        {"column": "country", "operator": "in", "value": ["PL", "LV"]},
        {"column": "last_purchase_at", "operator": "in_last_days", "value": 90},
        {"column": "total_spend", "operator": "gt", "value": 100},
    ]
}
# ~70 % of the profiles: enough members to stream a million of them.
CONSENTED = {"items": [{"column": "consent_email", "operator": "eq", "value": True}]}
EXPORT_COLUMNS = ["email", "first_name", "last_name", "country"]


def timed(work: Callable[[], T]) -> tuple[float, T]:
    """Wall seconds and the result."""
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def cpu_timed(work: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds (CPU of all this process's threads: what other load changes least)."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure_count(source: ProfileSource, rule: Group, repeat: int) -> tuple[list[float], int]:
    times, members = [], 0
    for _ in range(repeat):
        seconds, members = timed(lambda: source.count(source.segment(rule)))
        times.append(seconds)
    return times, members


def measure_stream(
    source: ProfileSource, rule: Group, rows: int, repeat: int
) -> tuple[list[float], int, int]:
    times, streamed, batches = [], 0, 0
    for _ in range(repeat):
        started = time.perf_counter()
        expr = source.members([rule], EXPORT_COLUMNS).limit(rows)
        streamed = batches = 0
        for batch in source.stream(expr, batch_rows=10_000):
            streamed += batch.num_rows
            batches += 1
        times.append(time.perf_counter() - started)
    return times, streamed, batches


def verdict(seconds: float, target: float) -> str:
    return f"{'met' if seconds <= target else 'NOT met'} (≤ {target:g} s)"


def generation(rows: int, folder: Path) -> tuple[list[list[object]], Path]:
    small, big = folder / "small.duckdb", folder / "profiles.duckdb"
    one_million, cpu = cpu_timed(lambda: generate(small, rows=1_000_000, seed=1))
    table: list[list[object]] = [
        [
            "generate 1,000,000 profiles",
            f"{one_million:.1f} s",
            f"{verdict(one_million, GENERATE_1M_TARGET_S)}; CPU {cpu:.1f} s",
        ]
    ]
    seconds, cpu = cpu_timed(lambda: generate(big, rows=rows, seed=1))
    table.append(
        [f"generate {rows:,} profiles", f"{seconds:.1f} s", f"{rows / seconds:,.0f} rows/s; CPU {cpu:.1f} s"]
    )
    table.append(["DuckDB file size", f"{big.stat().st_size / 2**20:,.0f} MiB", ""])
    return table, big


def queries(source: ProfileSource, rows: int, stream_rows: int, repeat: int) -> list[list[object]]:
    times, members = measure_count(source, parse(TYPICAL), repeat)
    best = min(times[1:] or times)
    stream_times, streamed, batches = measure_stream(source, parse(CONSENTED), stream_rows, repeat)
    best_stream = min(stream_times)
    return [
        [f"count a typical segment over {rows:,} (first run)", f"{times[0]:.2f} s", f"{members:,} members"],
        [
            f"count a typical segment (best of {max(repeat - 1, 1)} more)",
            f"{best:.2f} s",
            verdict(best, COUNT_TARGET_S),
        ],
        [
            f"stream {streamed:,} members ({len(EXPORT_COLUMNS)} columns + key, {batches} Arrow batches)",
            f"{best_stream:.2f} s",
            verdict(best_stream, STREAM_TARGET_S),
        ],
        [
            "stream rate",
            f"{streamed / best_stream:,.0f} rows/s",
            f"median {statistics.median(stream_times):.2f} s",
        ],
    ]


def run(rows: int, stream_rows: int, repeat: int, folder: Path) -> list[list[object]]:
    table, path = generation(rows, folder)
    table += queries(ProfileSource(f"duckdb://{path}"), rows, stream_rows, repeat)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table.append(["peak RSS of this process", f"{peak:,.0f} MiB", ""])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000, help="profiles to generate")
    parser.add_argument("--stream", type=int, default=1_000_000, help="members to stream")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each query")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-segments-") as folder:
        rows = run(args.rows, args.stream, args.repeat, Path(folder))
    load = os.getloadavg()[0]
    notes = (
        f"The typical segment is `country in (PL, LV) AND last_purchase_at in the last 90 days AND "
        f"total_spend > 100`; the streamed one is `consent_email = true`, limited to the first "
        f"{args.stream:,} members with e-mail, first and last name and country (what an export reads). "
        f"Every query opens its own read-only DuckDB connection, as in production. Measured "
        f"{datetime.now(UTC):%Y-%m-%d} with a load average of {load:.1f} on {os.cpu_count()} cores: other "
        f"processes (teammates' tests) were running, so absolute times are pessimistic."
    )
    publish("segments", "Profiles and segments (DuckDB)", ["measure", "time", "notes"], rows, notes)


if __name__ == "__main__":
    main()
