"""What the reliability tests share: big profile tables, exports, runs driven to their end, and
the platform's side read back through the sandbox's control endpoints (never our own records).

The world (users, connections to the sandbox, lists, segments) is the one of the export tests
(``tests/exports/world.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import duckdb
import httpx
import pytest
import sqlalchemy as sa

from exports.world import World  # tests/ is on sys.path (rootdir)
from segmentsync.connections.destination import destination_for
from segmentsync.connections.models import Connection
from segmentsync.db import transaction
from segmentsync.destinations.base import Destination
from segmentsync.destinations.policy import RetryPolicy, Tuning
from segmentsync.exports import runs
from segmentsync.exports.models import Export, Run, RunStatus
from segmentsync.runtime import Runtime
from segmentsync.scheduling.worker import Worker

PLATFORMS = ("campaign_monitor", "constant_contact")
# The metadata store of a test that needs one in particular (``store_url`` runs on both by default).
ON_SQLITE = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
ON_POSTGRESQL = pytest.mark.parametrize(
    "store_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
FINAL = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.SUCCEEDED_WITH_REJECTIONS,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.SKIPPED,
        RunStatus.AWAITING_CONFIRMATION,
    }
)

# Short timeouts and quick retries: a stalled request gives up after seconds, not a minute, so
# that faults cost little. The read timeout stays well above an import's time on a loaded machine
# (a request that times out after it was processed arrives twice). Attempts stay generous: an 18 %
# failure rate must never exhaust them.
FAST = Tuning(
    timeout=httpx.Timeout(5.0, connect=2.0, pool=60.0),
    retry=RetryPolicy(attempts=12, timeout=90, wait_initial=0.05, wait_max=0.5, wait_jitter=0.05),
    poll_initial=0.02,
    poll_max=0.2,
    short_rate_wait=0.2,
    requests_per_second=20,  # Constant Contact's 4/s is switched off in the sandbox (conftest)
)


def fast_destination(runtime: Runtime, connection: Connection) -> Destination:
    """The real destination of the stored connection, with ``FAST`` timeouts and retries."""
    return destination_for(runtime=runtime, connection=connection, tuning=FAST)


def write_profiles(runtime: Runtime, rows: int, *, extra_sql: str = "") -> None:
    """``rows`` profiles (person{i}@example.com, names, one of four countries) in DuckDB."""
    con = duckdb.connect(str(runtime.settings.data_dir / "profiles.duckdb"))
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TABLE profiles AS
            SELECT i AS profile_id, 'person' || i || '@example.com' AS email,
                   'First' || i AS first_name, 'Last' || i AS last_name, 'City' || (i % 3) AS city,
                   20 + i % 60 AS age, ['PL', 'LV', 'RO', 'FI'][1 + (i % 4)] AS country,
                   CASE WHEN i % 2 = 0 THEN 'yes' ELSE 'no' END AS consent
            FROM range(1, {rows + 1}) t(i)
            """  # a test constant, not input
        )
        if extra_sql:
            con.execute(extra_sql)
    finally:
        con.close()


def profile_emails(runtime: Runtime, where: str = "true") -> set[str]:
    """The segment as the profile source holds it: lower-cased emails of matching profiles."""
    con = duckdb.connect(str(runtime.settings.data_dir / "profiles.duckdb"), read_only=True)
    try:
        rows = con.execute(f"SELECT lower(trim(email)) FROM profiles WHERE {where}").fetchall()
    finally:
        con.close()
    return {row[0] for row in rows}


def name_attributes(platform: str) -> list[dict[str, str]]:
    if platform == "campaign_monitor":
        return [{"column": "first_name", "target": "Name"}, {"column": "last_name", "target": "Name"}]
    return [{"column": "first_name", "target": "first_name"}, {"column": "last_name", "target": "last_name"}]


def make_export(world: World, platform: str, **changes: Any) -> int:
    base = world.form if platform == "campaign_monitor" else world.cc_form
    values: dict[str, Any] = {
        "segment_ids": [world.segments["all"]],
        "name": f"{platform} export",
        "attributes": name_attributes(platform),
    }
    values.update(changes)
    return world.create(base(**values)).export_id


def start_run(world: World, export_id: int, **options: Any) -> int:
    actor = world.admin.load(world.runtime)
    with transaction(world.runtime.sessions) as session:
        export = session.get(Export, export_id)
        assert export is not None
        return runs.start_run(session=session, export=export, actor=actor, **options).id


def load_run(runtime: Runtime, run_id: int) -> Run:
    with runtime.sessions() as session:
        run = session.get(Run, run_id)
        assert run is not None
        session.expunge(run)
        return run


def make_due(runtime: Runtime, run_id: int) -> None:
    """Time passes: a run waiting for its retry (or a dead worker's lease) is due now."""
    past = runtime.clock() - timedelta(seconds=1)
    with transaction(runtime.sessions) as session:
        session.execute(sa.update(Run).where(Run.id == run_id).values(next_attempt_at=past))
        session.execute(
            sa.update(Run)
            .where(Run.id == run_id, Run.status == RunStatus.RUNNING)
            .values(lease_expires_at=past)
        )


def drive(runtime: Runtime, run_id: int, *, attempts: int = 10) -> tuple[Run, list[RunStatus]]:
    """Run it in this process (``FAST`` destination) until it rests; retries are made due at once.

    Returns the final run and the status after each attempt.
    """
    seen: list[RunStatus] = []
    worker = Worker(runtime, destination_factory=fast_destination)
    for _ in range(attempts):
        assert worker.run_once() == run_id
        run = load_run(runtime, run_id)
        seen.append(run.status)
        if run.status in FINAL:
            return run, seen
        make_due(runtime, run_id)
    raise AssertionError(f"run {run_id} did not finish in {attempts} attempts: {seen}")


def until(what: str, condition: Callable[[], object], timeout: float = 60) -> None:
    """Wait for ``condition`` to be true (polled every 20 ms); fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.02)


def wait_for(runtime: Runtime, run_id: int, statuses: frozenset[RunStatus], timeout: float) -> Run:
    deadline = time.monotonic() + timeout
    while True:
        run = load_run(runtime, run_id)
        if run.status in statuses:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run.status.value} after {timeout:.0f} s")
        time.sleep(0.2)


# ---------------------------------------------------------------- the platform's side


@dataclass
class Received:
    """How many times the platform received each address (``/_sandbox/lists/{id}/received``)."""

    addresses: int
    times: dict[int, int]  # times received -> how many addresses
    most: list[dict[str, Any]]

    @property
    def most_times(self) -> int:
        return max(self.times, default=0)


def list_url(world: World, platform: str) -> str:
    if platform == "campaign_monitor":
        return f"{world.sandbox.campaign_monitor_url}/_sandbox/lists/{world.cm.list_id}"
    return f"{world.sandbox.constant_contact_url}/_sandbox/lists/{world.cc.list_id}"


def count_received(world: World, platform: str) -> None:
    httpx.post(f"{list_url(world, platform)}/received", timeout=30).raise_for_status()


def received(world: World, platform: str) -> Received:
    body = httpx.get(f"{list_url(world, platform)}/received", timeout=60).json()
    assert body["counting"]
    return Received(body["addresses"], {int(k): v for k, v in body["times"].items()}, body["most"])


def platform_list(world: World, platform: str) -> set[str]:
    """Lower-case emails of the active members of the export's list, as the platform holds them."""
    if platform == "campaign_monitor":
        rows = httpx.get(f"{list_url(world, platform)}/subscribers?state=Active", timeout=120).json()
        return {row["EmailAddress"].lower() for row in rows}
    rows = httpx.get(f"{list_url(world, platform)}/members", timeout=120).json()["members"]
    return {row["email"].lower() for row in rows if row["permission_to_send"] != "unsubscribed"}


def counts_add_up(run: Run) -> None:
    """Every profile ends in exactly one outcome (removals are counted apart)."""
    outcomes = run.invalid + run.new + run.updated + run.unchanged + run.rejected + run.skipped
    assert run.profiles == outcomes, (
        f"profiles {run.profiles} != invalid {run.invalid} + new {run.new} + updated {run.updated} "
        f"+ unchanged {run.unchanged} + rejected {run.rejected} + skipped {run.skipped}"
    )
