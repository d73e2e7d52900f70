"""The metric families of runs and platforms (Prometheus, default registry), and their hooks.

Counters and histograms are this process's own (each worker process counts the runs and requests
it handled; Prometheus sums them), except in ``serve --processes N``, whose processes share one
port: there they are kept in files (:func:`share_between_processes`), and a scrape answered by any
of them shows the sum of all (:func:`exposition`). The queue, worker and last-success gauges are read from the
metadata store at scrape time (``observe.gauges``), so every process reports the same values.
This module imports nothing of the store: the platform clients count their requests through it. Label values are bounded: platform, trigger, status, outcome,
phase, a request's operation (its method and path template); an export's id and name only for
the exports an operator names in ``SEGMENTSYNC_METRICS_EXPORTS``. See docs/operations.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from segmentsync import __version__
from segmentsync.db import SCHEMA_HEAD

# No `…_created` series beside each counter and histogram (their creation time): half the series
# of a scrape, and nothing a dashboard or alert here uses.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus-client leaves it unannotated
BUILD = Info("segmentsync_build", "The version of segmentsync and the migration its code needs")
BUILD.info({"version": __version__, "schema": SCHEMA_HEAD})
RUNS = Counter(
    "segmentsync_runs",
    "Runs (attempts) that ended in this process, by platform, trigger and status",
    ["platform", "trigger", "status"],
)
ROWS = Counter(
    "segmentsync_rows",
    "Rows of the runs that finished in this process, by platform and outcome",
    ["platform", "outcome"],
)
RUN_DURATION = Histogram(
    "segmentsync_run_duration_seconds",
    "Time runs spent in each phase (snapshot, plan, send, finish) and in all (total), per attempt",
    ["platform", "phase"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600),
)
PLATFORM_REQUESTS = Counter(
    "segmentsync_platform_requests",
    "HTTP requests sent to the platforms, by operation and status code (error: no answer)",
    ["platform", "operation", "status"],
)
PLATFORM_DURATION = Histogram(
    "segmentsync_platform_request_duration_seconds",
    "Time the platforms took to answer, by operation",
    ["platform", "operation"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
THROTTLED = Counter(
    "segmentsync_platform_throttled",
    "Answers of the platforms that said to slow down (rate limited: the request is repeated later)",
    ["platform"],
)
TOKEN_REFRESHES = Counter(
    "segmentsync_token_refreshes",
    "OAuth access-token refreshes: ok, refused (the platform said no), not_saved, impossible (no refresh token)",
    ["platform", "result"],
)
SHARED_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own switch to its multiprocess mode
OUTCOMES = ("new", "updated", "unchanged", "removed", "invalid", "rejected", "skipped")

# ---------------------------------------------------------------- platform requests

# A path segment that is a word of the API ("lists", "contact_custom_fields", "import.json") stays;
# anything else (ids, keys, e-mail addresses) becomes {id}, so operations stay a short list.
_WORD = re.compile(r"^[a-z_]{1,40}(\.json)?$")


def operation(method: str, url: str, base_path: str = "") -> str:
    """``POST /subscribers/{id}/import.json``: a request's method and path template."""
    path = urlsplit(url).path
    if base_path and path.startswith(base_path):
        path = path[len(base_path) :]
    parts = [
        part if _WORD.match(part) else ("{id}.json" if part.endswith(".json") else "{id}")
        for part in path.strip("/").split("/")
        if part
    ]
    return f"{method.upper()} /{'/'.join(parts)}"


def platform_request(platform: str, operation: str, status: int | None, seconds: float) -> None:
    """One request sent: its answer's status (None: no answer — timeout, connection refused)."""
    PLATFORM_REQUESTS.labels(platform, operation, "error" if status is None else str(status)).inc()
    PLATFORM_DURATION.labels(platform, operation).observe(seconds)


def throttled(platform: str) -> None:
    THROTTLED.labels(platform).inc()


def token_refresh(platform: str, result: str) -> None:
    TOKEN_REFRESHES.labels(platform, result).inc()


# ---------------------------------------------------------------- several processes, one port


def _ours_counted(family: Metric) -> bool:
    """A family kept in files when shared: our counters and histograms (the build, the store's
    gauges and the process's CPU and memory stay in each process's memory)."""
    return family.name.startswith("segmentsync_") and family.type in ("counter", "histogram")


def share_between_processes(directory: Path) -> None:
    """From now on keep counters and histograms in files in ``directory`` (prometheus-client's
    multiprocess mode), so that a scrape answered by any of ``serve``'s web processes shows them all.

    Processes started afterwards inherit it through the environment (prometheus-client reads it when
    it is imported); this one switches the class its series are made of, which holds for series
    made from now on: every family of ours has labels, so none has a series before its first use.
    """
    counted = [family.name for family in REGISTRY.collect() if _ours_counted(family) and family.samples]
    if counted:
        raise RuntimeError(f"metrics already counted in this process's memory: {counted}")
    os.environ[SHARED_DIR] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]  # as prometheus-client's own tests switch it


class _Collected(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def exposition() -> bytes:
    """A scrape: this process's metrics, or, when they are shared, the sum of every process's
    counters and histograms with this process's other families."""
    directory = os.environ.get(SHARED_DIR)
    if not directory:
        return generate_latest(REGISTRY)
    families = list(MultiProcessCollector(None, path=directory).collect())  # type: ignore[no-untyped-call]
    families += [family for family in REGISTRY.collect() if not _ours_counted(family)]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collected(families))
    return generate_latest(registry)
