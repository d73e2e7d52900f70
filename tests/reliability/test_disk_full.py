"""The data folder's filesystem fills up mid-run: a small tmpfs mounted by the test (as root; the
test is skipped where it cannot mount), holding the SQLite store as in a default install, filled by
another file while the run sends. The run stops with an error naming the folder, nothing it
checkpointed is lost, and once there is room again it resumes and completes."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from exports.world import World, sandbox_settings
from segmentsync.exports.models import RunStatus
from segmentsync.sandbox.launcher import Sandbox
from segmentsync.scheduling.worker import Worker
from segmentsync.settings import Settings

from .scenario import (
    count_received,
    counts_add_up,
    drive,
    load_run,
    make_due,
    make_export,
    platform_list,
    profile_emails,
    received,
    start_run,
    until,
    write_profiles,
)

SIZE = "48m"
PROFILES = 20_000
BATCH_ROWS = 200


@pytest.fixture
def settings(tmp_path: Path, sandbox: Sandbox) -> Iterator[Settings]:
    data = tmp_path / "data"
    data.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield sandbox_settings(tmp_path, sandbox)
    finally:
        subprocess.run(["umount", "--lazy", str(data)], check=False)


@pytest.fixture
def store_url(settings: Settings, _sqlite_template: Path) -> str:
    """The SQLite store in the data folder, where a default install keeps it."""
    path = settings.data_dir / "segmentsync.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


def _fill(folder: Path) -> Path:
    """A file that takes every byte left (until ENOSPC)."""
    filler = folder / "filler"
    chunk = b"\0" * (1 << 20)
    with pytest.raises(OSError, match="No space left on device"), filler.open("wb") as handle:  # noqa: PT012
        while True:
            handle.write(chunk)
            handle.flush()
    return filler


def test_a_full_data_folder_stops_the_run_with_its_name_and_it_resumes_when_there_is_room(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="segmentsync.engine")
    runtime = world.runtime
    folder = runtime.settings.data_dir
    runtime.settings.max_batch_rows = BATCH_ROWS
    write_profiles(runtime, PROFILES)
    world.sandbox.cm_faults(latency_ms=200)  # the run lasts seconds
    export_id = make_export(world, "campaign_monitor")
    count_received(world, "campaign_monitor")
    run_id = start_run(world, export_id)
    worker = threading.Thread(target=Worker(runtime).run_once, name="worker")
    worker.start()
    until("the first checkpoints", lambda: load_run(runtime, run_id).batches_done >= 2)
    filler = _fill(folder)
    done_when_full = load_run(runtime, run_id).batches_done
    worker.join(timeout=120)
    assert not worker.is_alive()

    stopped = load_run(runtime, run_id)
    said = [stopped.error or "", *(r.getMessage() for r in caplog.records)]
    assert any(f"the data folder {folder} is full" in text for text in said), said
    assert stopped.status in (RunStatus.FAILED_RETRY, RunStatus.RUNNING)  # resumable, not failed
    assert stopped.attempt <= 1  # a full disk spends no attempt
    assert stopped.batches_done >= done_when_full  # no checkpoint lost
    print(
        f"\nstopped: {stopped.status.value}, {stopped.batches_done} batches checkpointed, error: {stopped.error}"
    )

    filler.unlink()  # room again
    world.sandbox.cm_faults(latency_ms=0)
    make_due(runtime, run_id)
    run, seen = drive(runtime, run_id)
    assert run.status is RunStatus.SUCCEEDED, (run.error, seen)
    counts_add_up(run)
    assert platform_list(world, "campaign_monitor") == profile_emails(runtime)
    got = received(world, "campaign_monitor")
    print(f"received: {got.times}")
    twice = sum(count for times, count in got.times.items() if times > 1)
    assert twice <= (16 + 2 * 32) * BATCH_ROWS, got.times  # in flight, in and waiting for a checkpoint
