"""`segmentsync quickstart` from an empty data dir: demo data, sandbox, web UI; again: reuse; Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(data_dir: Path, ports: tuple[int, int, int]) -> tuple[subprocess.Popen[str], list[str]]:
    web, cm, cc = ports
    env = {**os.environ, "SEGMENTSYNC_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    process = subprocess.Popen(
        [sys.executable, "-m", "segmentsync.cli_main", "quickstart", "--rows", "5000",
         "--port", str(web), "--cm-port", str(cm), "--cc-port", str(cc)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith("segmentsync on "):
            # keep reading: a full pipe would block the process (and its shutdown)
            threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True).start()
            return process, lines
    process.kill()
    raise AssertionError("quickstart did not start:\n" + "\n".join(lines))


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=60)


def test_quickstart_runs_the_demo_and_reuses_it(tmp_path: Path) -> None:
    ports = (free_port(), free_port(), free_port())
    process, lines = start(tmp_path, ports)
    try:
        text = "\n".join(lines)
        password = re.search(r"Password \(shown once\): (\S+)", text)
        assert password, text
        assert "generated 5,000 sample profiles" in text
        web = f"http://127.0.0.1:{ports[0]}"
        with httpx.Client(base_url=web, timeout=30) as client:
            signed_in = client.post(
                "/api/v1/session", json={"email": "admin@example.com", "password": password.group(1)}
            )
            assert signed_in.status_code == 200, signed_in.text
            exports = client.get("/api/v1/exports").json()["items"]
            assert sorted(e["name"] for e in exports) == [
                "Latvia → Constant Contact",
                "Poland → Campaign Monitor",
            ]
            csrf = signed_in.json()["csrf_token"]
            poland = next(e for e in exports if e["name"].startswith("Poland"))
            run = client.post(f"/api/v1/exports/{poland['id']}/runs", json={}, headers={"X-CSRF-Token": csrf})
            assert run.status_code in (200, 201, 202), run.text
            run_id = run.json()["id"]
            for _ in range(120):  # the worker inside quickstart picks it up
                status = client.get(f"/api/v1/runs/{run_id}").json()["status"]
                if status not in ("queued", "running"):
                    break
                time.sleep(0.5)
            assert status == "succeeded"
            assert client.get("/").status_code in (200, 303)
    finally:
        assert stop(process) == 0
    # the sandbox went away with it
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", ports[1]))

    again, lines = start(tmp_path, ports)
    try:
        text = "\n".join(lines)
        assert "(kept)" in text
        assert "Password (shown once)" not in text
    finally:
        assert stop(again) == 0
