"""Measure one process the way the benchmarks report it: wall time, CPU time, peak RSS, API calls.

The process is a child of ours, reaped with ``os.wait4`` so that its own resource usage (peak
RSS, user and system CPU) is read, not that of every child we ever had. While an export runs,
a watcher thread reads its run row from the metadata store every 50 ms to time the phases
(snapshot, plan, send, finish) from outside; the sandbox's ``/_sandbox/stats`` give the calls.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from benchmarks.report import markdown_table, publish
from benchmarks.world import Target, World, plain_list
from segmentsync.auth import service as auth_service
from segmentsync.db import transaction
from segmentsync.emails import FAST_EMAIL
from segmentsync.exports.models import ACTIVE_STATUSES, Run
from segmentsync.sandbox.launcher import Sandbox

POLL_SECONDS = 0.05
RUN_TIMEOUT_SECONDS = 600
CM_IMPORT = "POST /api/v3.3/subscribers/{listid}/import.json"
CC_IMPORT = "POST /v3/activities/contacts_json_import"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Process:
    seconds: float
    cpu_seconds: float  # user + system of the process (and children it waited for)
    peak_rss_mb: float
    exit_code: int
    output: str


def run_process(
    command: Sequence[str], env: dict[str, str] | None = None, on_start: Callable[[int], None] | None = None
) -> Process:
    """Run ``command`` to its end; its output goes to a file (no pipe to fill up).

    Peak RSS is the process's own high-water mark (``VmHWM``), read every 20 ms until it ends:
    ``ru_maxrss`` would not do, since a child started by a big parent inherits the parent's
    high-water mark at ``exec``.
    """
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        peak = PeakRss(child.pid)
        peak.start()
        if on_start is not None:
            on_start(child.pid)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        peak.halt.set()
        peak.join()
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        log.seek(0)
        output = log.read().decode(errors="replace")
    return Process(
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=peak.mb,
        exit_code=child.returncode,
        output=output,
    )


def status_kb(pid: int, key: str) -> int | None:
    """A ``VmRSS:``/``VmHWM:`` figure of /proc/PID/status in kB (None: gone, or no memory left)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in lines if line.startswith(key)), None)


class PeakRss(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.mb = pid, 0.0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.02):
            found = status_kb(self.pid, "VmHWM:")
            if found is not None:
                self.mb = max(self.mb, found / 1024)


def cli_command(*args: str) -> list[str]:
    """``segmentsync ARGS`` with the interpreter running the benchmark."""
    script = Path(sys.executable).with_name("segmentsync")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from segmentsync.cli import main; main()", *args]


def sandbox_calls(sandbox: Sandbox, platform: str) -> dict[str, int]:
    """Requests that reached the emulator's handlers, by route, plus ``total``."""
    base = sandbox.campaign_monitor_url if platform == "campaign_monitor" else sandbox.constant_contact_url
    stats = httpx.get(f"{base}/_sandbox/stats", timeout=30).json()
    calls = {route: int(n) for route, n in stats["requests"].items()}
    calls["total"] = int(stats.get("total_requests", stats.get("total", sum(calls.values()))))
    return calls


def calls_since(sandbox: Sandbox, platform: str, before: dict[str, int]) -> dict[str, int]:
    """The requests made since ``before`` (a :func:`sandbox_calls`), by route, plus ``total``."""
    after = sandbox_calls(sandbox, platform)
    return {route: n - before.get(route, 0) for route, n in after.items() if n - before.get(route, 0)}


def sandbox_cpu_seconds(sandbox: Sandbox) -> float:
    """CPU time the sandbox process has used so far (it shares the machine's cores with us)."""
    fields = Path(f"/proc/{sandbox.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_and_rss(pid: int) -> tuple[float, float] | None:
    """CPU seconds used so far and resident MB now, of a running process (None once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    rss_kb = status_kb(pid, "VmRSS:")
    if rss_kb is None:
        return None
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK"), rss_kb / 1024


def profiled_child(pid: int, timeout: float = 10) -> int:
    """The process py-spy started (the one to watch), or ``pid`` if it has none in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return pid
        if children:
            return int(children[0])
        time.sleep(0.01)
    return pid


@dataclass
class Phase:
    name: str
    started: float  # seconds since the process was launched
    cpu_at_start: float
    wall: float = 0.0
    cpu: float = 0.0
    peak_rss_mb: float = 0.0


class PhaseWatcher(threading.Thread):
    """Follows the export's newest run from outside: when it enters each phase, and the export
    process's CPU time and resident memory in each (read from /proc every 50 ms)."""

    def __init__(self, world: World, export_id: int, after_run: int, *, profiled: bool = False) -> None:
        super().__init__(daemon=True)
        self.world, self.export_id, self.after_run = world, export_id, after_run
        self.started = time.perf_counter()
        self.pid: int | None = None
        self.profiled = profiled
        self.phases = [Phase("start-up", 0.0, 0.0)]
        self.halt = threading.Event()

    def watch(self, pid: int) -> None:
        self.started, self.pid = time.perf_counter(), profiled_child(pid) if self.profiled else pid
        self.start()

    def run(self) -> None:
        query = (
            sa.select(Run.phase)
            .where(Run.export_id == self.export_id, Run.id > self.after_run)
            .order_by(Run.id.desc())
            .limit(1)
        )
        while not self.halt.wait(POLL_SECONDS):
            assert self.pid is not None
            usage = cpu_and_rss(self.pid)
            if usage is None:
                return
            cpu, rss = usage
            with self.world.runtime.readers() as session:
                phase = session.scalar(query)
            if phase is not None and phase.value not in {p.name for p in self.phases}:
                self.phases.append(Phase(phase.value, time.perf_counter() - self.started, cpu))
            current = self.phases[-1]
            current.peak_rss_mb = max(current.peak_rss_mb, rss)

    def finish(self, process: Process) -> list[Phase]:
        """Close the last phase at the process's end; each phase's wall and CPU seconds."""
        self.halt.set()
        if self.is_alive():
            self.join()
        ends = [(p.started, p.cpu_at_start) for p in self.phases[1:]] + [
            (process.seconds, process.cpu_seconds)
        ]
        for phase, (end, cpu_end) in zip(self.phases, ends, strict=True):
            phase.wall = max(end - phase.started, 0.0)
            phase.cpu = max(cpu_end - phase.cpu_at_start, 0.0)
        return self.phases


@dataclass
class ExportRun:
    process: Process
    run: dict[str, Any]
    calls: dict[str, int]  # route → calls during the run (and "total")
    phases: list[Phase]
    sandbox_cpu: float

    @property
    def upsert_calls(self) -> int:
        return self.calls.get(CM_IMPORT, 0) + self.calls.get(CC_IMPORT, 0)


def last_run_id(world: World, export_id: int) -> int:
    with world.runtime.readers() as session:
        found = session.scalar(sa.select(sa.func.max(Run.id)).where(Run.export_id == export_id))
    return int(found or 0)


def run_row(world: World, export_id: int) -> dict[str, Any]:
    with world.runtime.readers() as session:
        run = session.scalars(
            sa.select(Run).where(Run.export_id == export_id).order_by(Run.id.desc())
        ).first()
        assert run is not None, "the export never ran"
        names = (
            "id",
            "status",
            "profiles",
            "invalid",
            "new",
            "updated",
            "unchanged",
            "rejected",
            "rows_sent",
        )
        row: dict[str, Any] = {name: getattr(run, name) for name in names}
        row["status"] = run.status.value
        row["batches"] = run.batches_done
        if run.started_at is not None and run.finished_at is not None:  # claimed → finished
            row["seconds"] = (run.finished_at - run.started_at).total_seconds()
        row["error"] = run.error
        return row


def run_export(
    world: World, target: Target, platform: str, *, py_spy: str | None = None, profile: Path | None = None
) -> ExportRun:
    """``segmentsync exports run NAME --wait`` in its own process, measured from outside."""
    command = cli_command("exports", "run", target.name, "--wait")
    if py_spy and profile:
        # --threads: the run thread and the pool threads apart; --gil: only the thread holding the
        # GIL, i.e. where the Python CPU time goes (C code that releases it, like SQLite, is not seen)
        command = [
            py_spy,
            "record",
            "--threads",
            "--gil",
            "--rate",
            "200",
            "--format",
            "raw",
            "-o",
            str(profile),
            "--",
            *command,
        ]
    before, cpu_before = sandbox_calls(world.sandbox, platform), sandbox_cpu_seconds(world.sandbox)
    watcher = PhaseWatcher(
        world, target.export_id, last_run_id(world, target.export_id), profiled=bool(py_spy)
    )
    process = run_process(command, world.env, on_start=watcher.watch)
    phases = watcher.finish(process)
    calls = calls_since(world.sandbox, platform, before)
    run = run_row(world, target.export_id)
    if process.exit_code != 0 or run["status"] != "succeeded":
        sys.stderr.write(process.output[-4000:])
        raise RuntimeError(f"the export {target.name!r} ended {run['status']}: {run['error']}")
    return ExportRun(
        process,
        run,
        calls,
        phases,
        sandbox_cpu_seconds(world.sandbox) - cpu_before,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(base: str, timeout: float = 60) -> None:
    """Until the web app at ``base`` answers its sign-in page."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/sign-in", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the web app did not start")


@dataclass
class ServedRun:
    seconds: float  # from the API call that queued the run to the run's end, seen in the store
    cpu_seconds: float  # of the serve process over the same time
    peak_rss_mb: float  # the serve process's high-water mark, start-up included
    run: dict[str, Any]
    calls: dict[str, int]


def run_served(world: World, target: Target, platform: str) -> ServedRun:
    """The export run by a ``segmentsync serve`` that is already up (web app, API, one worker):
    "Run now" through the API (``POST /exports/{id}/runs`` with an API token), then the run's row
    read from the store every 10 ms (not through the API, which would take the serve process's
    CPU) until it ends."""
    with transaction(world.runtime.sessions) as session:
        _, token = auth_service.create_api_token(
            session=session, user=world.admin(session), name=f"bench {target.name}", actor=None,
            now=world.runtime.clock(),
        )  # fmt: skip
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**world.env, "SEGMENTSYNC_PORT": str(port)}
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            cli_command("serve", "--no-scheduler", "--workers", "1"),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(base)
            before, usage_before = sandbox_calls(world.sandbox, platform), cpu_and_rss(server.pid)
            started = time.perf_counter()
            answer = httpx.post(
                f"{base}/api/v1/exports/{target.export_id}/runs", headers={"Authorization": f"Bearer {token}"}
            )
            answer.raise_for_status()
            run_id = answer.json()["id"]
            query = sa.select(Run.status).where(Run.id == run_id)
            while True:
                with world.runtime.readers() as session:
                    status = session.scalar(query)
                if status is None:  # the API answers after its commit: the run must be there
                    raise RuntimeError(f"run {run_id} was answered 201 but is not in the store")
                if status not in ACTIVE_STATUSES:
                    break
                if time.perf_counter() - started > RUN_TIMEOUT_SECONDS:
                    raise RuntimeError(f"run {run_id} still {status} after {RUN_TIMEOUT_SECONDS} s")
                time.sleep(0.01)
            seconds = time.perf_counter() - started
            usage_after = cpu_and_rss(server.pid)
            peak = status_kb(server.pid, "VmHWM:") or 0
        finally:
            server.terminate()
            server.wait(timeout=60)
        if usage_before is None or usage_after is None:
            log.seek(0)
            raise RuntimeError(f"segmentsync serve stopped: {log.read().decode(errors='replace')[-4000:]}")
    calls = calls_since(world.sandbox, platform, before)
    run = run_row(world, target.export_id)
    if run["status"] != "succeeded":
        raise RuntimeError(f"the export {target.name!r} ended {run['status']}: {run['error']}")
    return ServedRun(seconds, usage_after[0] - usage_before[0], peak / 1024, run, calls)


def run_loop(world: World, module: str, client: dict[str, Any], title: str) -> tuple[Process, dict[str, Any]]:
    """One of the plain loops we compare with (``benchmarks.floor``, ``benchmarks.createsend_loop``),
    as its own process, sending the members to a new list of ``client``: its measures and counts."""
    list_id = plain_list(world, client, title)
    command = [
        sys.executable, "-m", module, "--profiles", str(world.profiles_path),
        "--api", world.sandbox.campaign_monitor_api, "--list", list_id,
        f"--api-key={client['ApiKey']}",  # one word: a key may begin with "-"
        f"--email-pattern={FAST_EMAIL}",
    ]  # fmt: skip
    before = sandbox_calls(world.sandbox, "campaign_monitor")
    process = run_process(command, {**world.env, "PYTHONPATH": str(ROOT)})
    if process.exit_code != 0:
        raise RuntimeError(f"{module} failed:\n{process.output[-3000:]}")
    sent: dict[str, Any] = json.loads(process.output.strip().splitlines()[-1])
    calls = calls_since(world.sandbox, "campaign_monitor", before)
    sent["import_calls"] = calls.get(CM_IMPORT, 0)
    sent["all_calls"] = calls.get("total", 0)
    return process, sent


def py_spy_path(given: str | None) -> str | None:
    """The py-spy executable to profile with, if asked for (not a project dependency)."""
    if given is None:
        return None
    found = shutil.which(given) or (given if Path(given).exists() else None)
    if found is None:
        raise SystemExit(f"py-spy not found at {given!r}")
    return found


# ---------------------------------------------------------------- shared by the scripts


def arguments(
    doc: str | None, *, rows: int, store: bool = True, profile: bool = True
) -> argparse.ArgumentParser:
    """The options every export benchmark takes."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=rows, help=f"profiles to generate (default {rows:,})")
    if store:
        parser.add_argument(
            "--store", choices=("sqlite", "postgresql"), default="sqlite", help="metadata store"
        )
    parser.add_argument(
        "--no-publish", action="store_true", help="print only; leave docs/benchmarks.md alone"
    )
    parser.add_argument("--json", type=Path, help="also write the results here (used by the smoke tests)")
    if profile:
        parser.add_argument("--py-spy", help="profile the export process with this py-spy executable")
        parser.add_argument("--profile-dir", type=Path, default=Path("."), help="where py-spy writes")
    return parser


def phases_text(phases: list[Phase]) -> str:
    """``snapshot 4.1 s (CPU 3.9 s, 420 MB) · …``: wall, CPU and peak resident memory per phase."""
    return " · ".join(
        f"{p.name} {p.wall:.1f} s (CPU {p.cpu:.1f} s, {p.peak_rss_mb:,.0f} MB)"
        for p in phases
        if p.wall >= 0.05
    )


def phases_json(phases: list[Phase]) -> list[dict[str, Any]]:
    return [
        {
            "phase": p.name,
            "wall": round(p.wall, 2),
            "cpu": round(p.cpu, 2),
            "peak_rss_mb": round(p.peak_rss_mb),
        }
        for p in phases
    ]


def verdict(ok: bool, target: str) -> str:
    return f"{'met' if ok else 'NOT met'} ({target})"


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return (
        f"Load average {one:.1f} (5 min: {five:.1f}) on {os.cpu_count()} cores when it ended: other "
        "processes were running, so absolute times are pessimistic; ratios and CPU seconds less so."
    )


def write_json(path: Path | None, results: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(results, indent=2, default=str))


def report(
    name: str, title: str, headers: list[str], rows: list[list[object]], notes: str, *, to_doc: bool
) -> None:
    """Print the table, and write it into docs/benchmarks.md unless told not to (``--no-publish``)."""
    if to_doc:
        publish(name, title, headers, rows, notes)
        return
    print(f"### {title}\n\n{markdown_table(headers, rows)}\n\n{notes}\n")
