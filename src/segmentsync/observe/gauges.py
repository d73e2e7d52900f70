"""The gauges read from the metadata store at each scrape: the queue, the workers, and the last
success of the exports an operator names in ``SEGMENTSYNC_METRICS_EXPORTS`` — a few indexed queries
(≈ 1 ms on a year-shaped store: docs/benchmarks.md), the same in every process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import sqlalchemy as sa
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from segmentsync.db import database_now
from segmentsync.exports.models import Export, Run, RunStatus
from segmentsync.runtime import Runtime
from segmentsync.scheduling.models import WorkerBeat

log = logging.getLogger(__name__)


class StoreCollector(Collector):
    """Queue, workers and (opt-in) last successes, read from the store at each scrape.

    One collector for the process, registered once; :func:`watch` points it at the process's
    runtime. If the store does not answer, ``segmentsync_store_up`` is 0 and the rest is absent
    (the scrape itself still succeeds, so that the alert is about the store, not the target).
    """

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self._lock = threading.Lock()

    def describe(self) -> Iterator[Metric]:
        return iter(())  # collected at scrape time only (no collect() when registered)

    def collect(self) -> Iterator[Metric]:
        runtime = self.runtime
        if runtime is None:
            return
        up = GaugeMetricFamily("segmentsync_store_up", "1 if the metadata store answered this scrape")
        try:
            with self._lock:  # concurrent scrapes take turns: one set of queries at a time
                families = list(_store_families(runtime))
        except Exception as exc:
            log.warning("metrics: the store did not answer: %s: %s", exc.__class__.__name__, exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def _store_families(runtime: Runtime) -> Iterator[Metric]:
    with runtime.readers() as session:
        now = database_now(session)  # the clock heartbeats and leases are written with
        alive_since = now - timedelta(seconds=runtime.settings.worker_lease_seconds)
        by_status = {
            status: (count, oldest)
            for status, count, oldest in session.execute(
                sa.select(Run.status, sa.func.count(), sa.func.min(Run.created_at))
                .where(Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED_RETRY]))
                .group_by(Run.status)
            )
        }
        alive, busy, newest = session.execute(
            sa.select(
                sa.func.count().filter(WorkerBeat.heartbeat_at > alive_since),
                sa.func.count().filter(WorkerBeat.heartbeat_at > alive_since, WorkerBeat.run_id.is_not(None)),
                sa.func.max(WorkerBeat.heartbeat_at),
            )
        ).one()
        wanted = runtime.settings.metrics_export_list
        successes = _last_successes(session, wanted) if wanted else []
    queued, oldest = by_status.get(RunStatus.QUEUED, (0, None))
    yield _gauge("segmentsync_runs_queued", "Runs waiting for a worker", queued)
    yield _gauge(
        "segmentsync_runs_running", "Runs a worker is executing", by_status.get(RunStatus.RUNNING, (0,))[0]
    )
    yield _gauge(
        "segmentsync_runs_retrying",
        "Runs that failed and wait for their next attempt",
        by_status.get(RunStatus.FAILED_RETRY, (0,))[0],
    )
    yield _gauge(
        "segmentsync_oldest_queued_run_age_seconds",
        "How long the oldest queued run has waited (0: none queued)",
        max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0,
    )
    yield _gauge("segmentsync_workers_alive", "Workers whose heartbeat is younger than the lease", alive)
    yield _gauge("segmentsync_workers_busy", "Live workers executing a run", busy)
    if newest is not None:  # absent until a worker has ever beaten
        age = GaugeMetricFamily(
            "segmentsync_worker_heartbeat_age_seconds",
            "Seconds since the latest heartbeat of any worker (grows when every worker is gone)",
        )
        age.add_metric([], max((now - newest).total_seconds(), 0.0))
        yield age
    if wanted:
        last = GaugeMetricFamily(
            "segmentsync_export_last_success_timestamp_seconds",
            "When the export's latest successful run finished (Unix time; the exports of SEGMENTSYNC_METRICS_EXPORTS)",
            labels=["export_id", "export"],
        )
        for export_id, name, finished in successes:
            last.add_metric([str(export_id), name], finished.timestamp() if finished else 0.0)
        yield last


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _last_successes(session: Session, wanted: list[str]) -> list[tuple[int, str, datetime | None]]:
    exports = sa.select(Export.id, Export.name)
    if wanted != ["*"]:
        ids = [int(item) for item in wanted if item.isdigit()]
        exports = exports.where(sa.or_(Export.id.in_(ids), Export.name.in_(wanted)))
    # The export's latest successful run by id: one run of an export is active at a time, so the
    # latest started is the latest finished, and the walk down the export's index (its entries
    # end with the id) stops at the first success instead of reading the export's whole history.
    latest = (
        sa.select(Run.finished_at)
        .where(
            Run.export_id == Export.id,
            Run.status.in_([RunStatus.SUCCEEDED, RunStatus.SUCCEEDED_WITH_REJECTIONS]),
            Run.dry_run.is_(False),
        )
        .order_by(Run.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return [
        (row[0], row[1], row[2]) for row in session.execute(exports.add_columns(latest).order_by(Export.id))
    ]


STORE = StoreCollector()
REGISTRY.register(STORE)


def watch(runtime: Runtime) -> None:
    """Report the queue and workers of ``runtime``'s store at each scrape of this process."""
    STORE.runtime = runtime
