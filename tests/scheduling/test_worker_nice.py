"""``segmentsync worker`` lowers its own CPU priority by ``SEGMENTSYNC_WORKER_NICE`` (default 19, the lowest)
before it starts any thread, so every thread of it runs at that niceness; 0 leaves it as started;
a value outside 0–19 is refused, naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

CLI = str(Path(sys.executable).with_name("segmentsync"))
pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMENTSYNC_", "OTEL_"))}
    env.update(
        SEGMENTSYNC_DATA_DIR=str(tmp_path / "data"), SEGMENTSYNC_SECRET_KEY=Fernet.generate_key().decode()
    )
    return {**env, **settings}


def _niceness(stat: Path) -> int:
    return int(stat.read_text().rpartition(")")[2].split()[16])  # field 19 of proc(5)


@pytest.mark.parametrize(("setting", "lowered_by"), [(None, 19), ("0", 0), ("7", 7)])
def test_every_thread_of_a_worker_runs_at_the_niceness_set(
    tmp_path: Path, setting: str | None, lowered_by: int
) -> None:
    env = _env(tmp_path, **({"SEGMENTSYNC_WORKER_NICE": setting} if setting is not None else {}))
    worker = subprocess.Popen([CLI, "worker", "--count", "2"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None
        for line in worker.stdout:  # its workers wait for runs: every thread has started
            if "waiting for runs" in line:
                break
        else:
            pytest.fail(f"the worker ended first (exit code {worker.wait(30)})")
        started_at = os.getpriority(os.PRIO_PROCESS, 0)
        tasks = list(Path(f"/proc/{worker.pid}/task").iterdir())
        assert len(tasks) >= 3  # the main thread, two workers (and the deliveries' sender)
        assert {_niceness(task / "stat") for task in tasks} == {min(19, started_at + lowered_by)}
    finally:
        worker.terminate()
        worker.wait(60)


def test_a_niceness_out_of_range_is_refused_naming_the_setting(tmp_path: Path) -> None:
    done = subprocess.run(
        [CLI, "worker"],
        env=_env(tmp_path, SEGMENTSYNC_WORKER_NICE="20"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "worker_nice" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
