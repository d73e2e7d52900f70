"""The export benchmarks still work: each runs end to end on a few thousand profiles.

Every script is run the way people run it (``python -m benchmarks.NAME``), as its own process
with its own sandbox, with ``--no-publish`` and ``--json``. Only behaviour is checked here — the
export delivered what it should, the re-runs sent what they should — never a time: timings come
from the scripts on a quiet machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from segmentsync.db import create_engine

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "benchmarks.md"
ROWS = "3000"
POSTGRES_SERVER = os.environ.get("SEGMENTSYNC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")

pytestmark = pytest.mark.slow  # each script starts a sandbox, generates profiles and runs exports


def bench(name: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    before = DOC.read_text() if DOC.exists() else None
    out = tmp_path / f"{name}.json"
    command = [
        sys.executable,
        "-m",
        f"benchmarks.{name}",
        "--rows",
        ROWS,
        "--no-publish",
        "--json",
        str(out),
        *args,
    ]
    env = {**os.environ, "SEGMENTSYNC_BENCH_POSTGRES": POSTGRES_SERVER}
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (DOC.read_text() if DOC.exists() else None) == before, (
        "--no-publish must leave docs/benchmarks.md alone"
    )
    results: dict[str, Any] = json.loads(out.read_text())
    return results


def _postgres() -> str | None:
    """None if PostgreSQL is reachable for ``--store postgresql``, else why not."""
    try:
        engine = create_engine(f"{POSTGRES_SERVER}/postgres", connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # any failure to connect: not reachable here
        return f"PostgreSQL not reachable at {POSTGRES_SERVER}: {exc.__class__.__name__}"
    return None


def test_full_campaign_monitor_export_beside_the_floor(tmp_path: Path) -> None:
    found = bench("bench_export_cm", tmp_path)
    assert all(found["checks"].values()), found["checks"]
    assert found["floor_rows"] >= found["run"]["rows_sent"] > 0  # the floor sends duplicates too
    # phases are sampled every 50 ms: a short one may pass unseen; the process start never does
    assert "start-up" in {phase["phase"] for phase in found["phases"]}


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_reruns_send_nothing_then_only_the_changed_profiles(tmp_path: Path, store: str) -> None:
    if store == "postgresql" and (reason := _postgres()):
        pytest.skip(reason)
    found = bench("bench_rerun", tmp_path, "--store", store)
    assert found["store"] == store
    assert all(found["checks"].values()), found["checks"]


def test_constant_contact_export_under_the_real_limits(tmp_path: Path) -> None:
    found = bench("bench_export_cc", tmp_path)
    assert all(found["checks"].values()), found["checks"]


def test_export_beside_a_createsend_loop(tmp_path: Path) -> None:
    found = bench("bench_vs_createsend", tmp_path, "--latency-ms", "20")
    assert all(found["checks"].values()), found["checks"]
    assert found["createsend_rows"] > 0
