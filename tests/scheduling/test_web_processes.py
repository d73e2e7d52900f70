"""``serve --processes 2``: two processes answer on one port (each on a socket of its own, and
connections opened together are spread over both), a scrape answered by either shows the
requests both answered, the extra process stops with the first — on SIGTERM (with its
shared-metrics directory removed) and when the first is killed outright — and is started again
when it dies; a second ``serve`` cannot take the port.

Which process takes a connection is the kernel's choice (a hash of the client's port): the tests
open connections until one is held by the process they want, found in /proc.
"""

from __future__ import annotations

import gc
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from observe.scrape import parse, value  # tests/ is on sys.path (rootdir)
from segmentsync.runtime import Runtime
from segmentsync.scheduling import web_processes

CLI = str(Path(sys.executable).with_name("segmentsync"))
ROUTE = "/api/v1/me"


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (FileNotFoundError, ProcessLookupError):  # ended meanwhile
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


def web_process(pid: int, besides: int | None = None) -> int:
    """The extra web process of ``serve`` ``pid`` (not multiprocessing's resource tracker), other
    than ``besides``."""
    deadline = time.monotonic() + 60  # started just after the socket is bound (and announced)
    while time.monotonic() < deadline:
        for child in children(pid):
            with suppress(FileNotFoundError):
                if child != besides and "spawn_main" in Path(f"/proc/{child}/cmdline").read_text():
                    return child
        time.sleep(0.05)
    raise AssertionError(f"serve {pid} started no web process")


def ended(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # ended, not yet reaped (its parent was killed)


def gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while not ended(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def holder(port: int, client_port: int, pids: tuple[int, ...]) -> int | None:
    """Which of ``pids`` holds the server's end of the connection from ``client_port`` to ``port``."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.rsplit(":", 1)[1], 16) == port and int(remote.rsplit(":", 1)[1], 16) == client_port:
                inode = fields[9]
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with suppress(OSError):  # closed meanwhile
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
    return None


class Serve:
    def __init__(self, tmp_path: Path, store_url: str) -> None:
        self.tmp = tmp_path / "tmp"  # where the shared-metrics directory goes
        self.tmp.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMENTSYNC_", "OTEL_"))}
        self.env.update(
            SEGMENTSYNC_DATA_DIR=str(tmp_path / "data"),
            SEGMENTSYNC_DATABASE_URL=store_url,
            SEGMENTSYNC_SECRET_KEY=Fernet.generate_key().decode(),
            SEGMENTSYNC_LOG_FORMAT="json",
            SEGMENTSYNC_PORT="0",
            TMPDIR=str(self.tmp),
        )
        self.cli("users", "create", "admin@example.com", "--role", "admin")
        token = json.loads(self.cli("users", "token", "admin@example.com", "--json"))["token"]
        self.headers = {"Authorization": f"Bearer {token}"}
        self.process = subprocess.Popen(
            [CLI, "serve", "--processes", "2", "--workers", "0", "--no-scheduler"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.base = self._address()
        # the rest of its log, read so that a full pipe never stops it
        threading.Thread(target=self.process.stderr.read, daemon=True).start()  # type: ignore[union-attr]
        self.other = web_process(self.process.pid)
        self._wait_for_the_other()

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [CLI, *args], env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def _address(self) -> str:
        assert self.process.stderr is not None
        address = ""
        for line in self.process.stderr:
            message = json.loads(line).get("message", "")
            if "Uvicorn running on" in message:
                address = message.split(" on ", 1)[1].split(" ")[0]
            if message.startswith("segmentsync on "):  # the first process answers
                return address
        raise AssertionError("serve ended before it listened")

    def _wait_for_the_other(self) -> None:  # it listens once its app is ready
        self.connection_to(self.other).close()

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def connection(self) -> tuple[http.client.HTTPConnection, int | None]:
        """A new keep-alive connection (answered once: accepted) and the process holding it."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        assert connection.sock is not None
        return connection, holder(self.port, connection.sock.getsockname()[1], (self.process.pid, self.other))

    def connection_to(self, pid: int) -> http.client.HTTPConnection:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            connection, held_by = self.connection()
            if held_by == pid:
                return connection
            connection.close()
        raise AssertionError(f"no connection reached web process {pid}")

    def get(self, connection: http.client.HTTPConnection, path: str) -> bytes:
        connection.request("GET", path, headers=self.headers)
        answer = connection.getresponse()
        body = answer.read()
        assert answer.status == 200, body
        return body

    def counted(self, connection: http.client.HTTPConnection) -> float:
        samples = parse(self.get(connection, "/metrics").decode())
        return value(samples, "segmentsync_http_requests_total", method="GET", route=ROUTE, status="200")

    def shared_dirs(self) -> list[Path]:
        return list(self.tmp.glob("segmentsync-metrics-*"))

    def kill(self) -> None:
        for pid in (self.other, self.process.pid):
            if not ended(pid):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(30)


@pytest.fixture
def serve(tmp_path: Path, store_url: str) -> Iterator[Serve]:
    started = Serve(tmp_path, store_url)
    yield started
    started.kill()


def test_a_scrape_answered_by_either_process_counts_the_requests_both_answered(serve: Serve) -> None:
    first, other = serve.connection_to(serve.process.pid), serve.connection_to(serve.other)
    for _ in range(3):
        serve.get(first, ROUTE)
    for _ in range(4):
        serve.get(other, ROUTE)
    assert serve.counted(other) == 7
    assert serve.counted(first) == 7
    assert [path.name for path in serve.shared_dirs()] != []


def test_connections_are_spread_by_the_kernel_not_by_which_process_woke_first(serve: Serve) -> None:
    """Each process listens on a socket of its own and the kernel spreads new connections over
    them by a hash of the client's port. On one shared socket the process that won the race to
    accept kept winning it, and kept what it took (keep-alive): 37 and 44 of the benchmark's 50
    readers, whose reads then waited on its one core while the other process idled. 150
    connections arriving 20 ms apart, each asking at once: on one shared socket one process got
    8-12 of 60; now either gets fewer than 45 of 150 with a chance of about 1 in 2,000,000."""
    request = f"GET {ROUTE} HTTP/1.1\r\nHost: t\r\nAuthorization: {serve.headers['Authorization']}\r\n\r\n"
    sockets: list[socket.socket] = []
    try:
        for _ in range(150):
            sockets.append(socket.create_connection(("127.0.0.1", serve.port), timeout=30))
            sockets[-1].sendall(request.encode())
            time.sleep(0.02)
        held = []
        for sock in sockets:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            held.append(holder(serve.port, sock.getsockname()[1], (serve.process.pid, serve.other)))
    finally:
        for sock in sockets:
            sock.close()
    assert min(held.count(serve.process.pid), held.count(serve.other)) >= 45, held


def test_a_second_serve_cannot_take_the_port(serve: Serve) -> None:
    env = serve.env | {"SEGMENTSYNC_PORT": str(serve.port)}
    second = subprocess.run(
        [CLI, "serve", "--processes", "2", "--workers", "0", "--no-scheduler"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert second.returncode == 3, second.stderr
    assert f"cannot listen on 127.0.0.1:{serve.port}" in second.stderr
    first = serve.connection_to(serve.process.pid)
    assert serve.get(first, ROUTE)  # the first goes on


def test_sigterm_stops_every_process_and_removes_the_shared_metrics(serve: Serve) -> None:
    serve.get(serve.connection()[0], ROUTE)
    serve.process.send_signal(signal.SIGTERM)
    assert serve.process.wait(60) == 0
    assert gone(serve.other, 30)
    assert serve.shared_dirs() == []


def test_the_other_process_stops_when_the_first_is_killed(serve: Serve) -> None:
    os.kill(serve.process.pid, signal.SIGKILL)
    serve.process.wait(30)
    assert gone(serve.other, 10), "the extra web process kept serving after the first was killed"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{serve.base}/healthz", timeout=5)


def test_a_web_process_that_dies_is_started_again(serve: Serve) -> None:
    dead = serve.other
    os.kill(dead, signal.SIGKILL)
    assert gone(dead, 10)
    serve.other = web_process(serve.process.pid, besides=dead)
    again = serve.connection_to(serve.other)  # the new one answers on the same port
    assert json.loads(serve.get(again, ROUTE))["user"]["email"] == "admin@example.com"


def test_a_web_process_sets_start_ups_objects_aside_from_the_garbage_collector(runtime: Runtime) -> None:
    """What ``serve`` builds before it answers (the app, its routes, the modules) is frozen out of
    the cyclic collector's generations, and young objects are collected less often."""
    before = gc.get_threshold()
    try:
        web_processes.web_server(runtime, runtime.settings, workers=False)
        assert gc.get_freeze_count() > 100_000
        assert gc.get_threshold()[0] == web_processes.YOUNG_OBJECTS > before[0]
    finally:  # this test process goes on as before
        gc.unfreeze()
        gc.set_threshold(*before)
