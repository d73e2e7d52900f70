"""Log lines while a run is handled: each carries the run's fields (from the run's own thread and
from its sender threads), one line as it starts and one as it ends, the worker's lines for
claiming, resuming and losing a lease; JSON fields in JSON mode, ``[key=value]`` in text mode."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from exports.world import World  # tests/ is on sys.path (rootdir)
from segmentsync.db import transaction
from segmentsync.exports.models import Export, Run, RunStatus
from segmentsync.logs import MASK, configure_logging, register_secret
from segmentsync.observe.context import RunFields, run_fields
from segmentsync.scheduling.worker import Worker
from segmentsync.settings import Settings

from .runs import make_export, queue_run, run_export

FIELDS = ("run_id", "export_id", "connection_id", "platform", "phase", "worker")


@pytest.fixture
def log_lines(world: World) -> Iterator[io.StringIO]:
    """Every record as a JSON line in the returned stream (httpx's request lines included: they are
    written by the run's sender threads)."""
    world.sandbox.cc_faults(requests_per_second=None, instant_activities=True)
    stream = io.StringIO()
    root, httpx_logger = logging.getLogger(), logging.getLogger("httpx")
    level, handlers = root.level, list(root.handlers)
    world.runtime.settings.log_format, world.runtime.settings.log_level = "json", "INFO"
    configure_logging(world.runtime.settings, stream=stream)
    httpx_logger.setLevel(logging.INFO)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
    httpx_logger.setLevel(logging.WARNING)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    "store_url", ["sqlite"], indirect=True
)  # the run's log context does not depend on the store
@pytest.mark.parametrize("platform", ["campaign_monitor", "constant_contact"])
def test_every_line_of_a_run_carries_its_fields_and_it_starts_and_ends_with_a_line(
    world: World, log_lines: io.StringIO, platform: str
) -> None:
    export_id = make_export(world, platform)
    worker = Worker(world.runtime, name="worker-a")
    run = run_export(world, export_id, worker)
    assert run.status is RunStatus.SUCCEEDED
    written = lines(log_lines)
    started = next(i for i, line in enumerate(written) if line.get("event") == "run.started")
    ended = next(i for i, line in enumerate(written) if line.get("event") == "run.ended")
    during = written[started : ended + 1]
    connection = world.cm.connection_id if platform == "campaign_monitor" else world.cc.connection_id
    expected = {"run_id": run.id, "export_id": export_id, "connection_id": connection, "platform": platform,
                "worker": "worker-a"}  # fmt: skip
    for line in during:
        assert {key: line.get(key) for key in expected} == expected, line
    requests = [line for line in during if line["logger"] == "httpx"]
    assert requests, "the platform requests are logged (by the sender threads)"
    threads_phases = {line["phase"] for line in requests}
    assert threads_phases <= {"plan", "send"}  # the list's fields are read while planning
    assert "send" in threads_phases
    first, last = during[0], during[-1]
    assert first["message"].startswith(
        f"run {run.id} started: export '{platform} export' (on_demand), attempt 1"
    )
    assert (first["trigger"], first["attempt"], first["resumed_from"]) == ("on_demand", 1, None)
    assert last["level"] == "INFO"
    assert (last["status"], last["new"], last["unchanged"], last["error"]) == ("succeeded", 20, 0, None)
    assert last["duration_seconds"] > 0
    assert f"run {run.id} ended: succeeded in" in last["message"]
    assert "new 20" in last["message"]
    after = written[ended + 1 :]
    assert all(
        "run_id" not in line for line in after if line.get("event") != "run.claimed"
    )  # the context ended


@pytest.mark.parametrize(
    "store_url", ["sqlite"], indirect=True
)  # the run's log context does not depend on the store
def test_a_failed_run_ends_with_an_error_line_naming_the_error(world: World, log_lines: io.StringIO) -> None:
    export_id = make_export(world, "campaign_monitor")
    with transaction(world.runtime.sessions) as session:
        session.execute(sa.update(Export).where(Export.id == export_id).values(list_id="0" * 32))
    run = run_export(world, export_id)
    assert run.status is RunStatus.FAILED
    [ended] = [line for line in lines(log_lines) if line.get("event") == "run.ended"]
    assert (ended["level"], ended["status"], ended["error_code"]) == ("ERROR", "failed", run.error_code)
    assert ended["error"] == run.error
    assert "Invalid ListID" in ended["message"]


def test_claim_resume_and_lease_loss_are_logged(world: World, log_lines: io.StringIO) -> None:
    runtime = world.runtime
    run_id = queue_run(world, make_export(world, "campaign_monitor"))
    first = Worker(runtime, name="first")
    assert first.claim() == run_id
    with transaction(runtime.sessions) as session:  # "first" died: its lease ran out
        session.execute(
            sa.update(Run)
            .where(Run.id == run_id)
            .values(lease_expires_at=runtime.clock() - timedelta(seconds=1))
        )
    assert Worker(runtime, name="second").claim() == run_id
    first.lease = timedelta(seconds=0.15)  # its heartbeat comes back, and finds the run taken
    stop = threading.Event()
    first._heartbeat(run_id, stop, None, time.monotonic())
    assert stop.is_set()
    by_event = {line["event"]: line for line in lines(log_lines) if "event" in line}
    assert by_event["run.claimed"]["message"] == f"worker first claimed run {run_id} (queued)"
    resumed = by_event["run.resumed"]
    assert (resumed["level"], resumed["worker"], resumed["previous_owner"]) == ("WARNING", "second", "first")
    assert (
        resumed["message"]
        == f"worker second resumed run {run_id} from phase start (the lease of first expired)"
    )
    lost = by_event["run.lease_lost"]
    assert (lost["level"], lost["worker"], lost["run_id"]) == ("WARNING", "first", run_id)


def test_text_lines_end_with_the_runs_fields_and_secrets_stay_masked(tmp_path: Path) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    configure_logging(Settings(data_dir=tmp_path, log_format="text"), stream=stream)
    register_secret("a-platform-key-123")
    try:
        with run_fields(RunFields(run_id=7, export_id=3, platform="campaign_monitor", phase="send")):
            logging.getLogger("segmentsync.test").warning("sending with a-platform-key-123")
        logging.getLogger("segmentsync.test").warning("no run")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    during, outside = stream.getvalue().splitlines()
    assert during.endswith(f"sending with {MASK} [run_id=7 export_id=3 platform=campaign_monitor phase=send]")
    assert outside.endswith("segmentsync.test: no run")
