"""More web processes for ``serve --processes N``: N - 1 processes answering on ``serve``'s socket.

One Python process answers requests on one core at most (the GIL): on a year-old store with
50 people reading while exports run, a single ``serve`` process is the limit, not the store
(docs/benchmarks.md). ``serve --processes N`` starts N - 1 more processes, fresh (``spawn``:
nothing of the parent's threads or connections is copied), each with the web app and REST API
and its own store connections. On Linux each listens on a socket of its own on the same address
(SO_REUSEPORT) once its app is ready, and the kernel spreads new connections over them; elsewhere
the first binds one socket and hands it to the others. The scheduler, the workers and the
deliveries stay in the first process only, so nothing runs twice.

Nothing a request needs lives in one process's memory: sessions, CSRF tokens, OAuth ``state``
and the sign-in throttle are in the store or the signed cookie. Counters and histograms are
shared through files (``observe.metrics.share_between_processes``), so a scrape answered by any
process shows them all. A process that dies is started again; every process stops with the
first (on Ctrl-C or SIGTERM they finish the requests in flight, as uvicorn does; if the first is
killed outright, the others notice within a second and stop).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from segmentsync.api.app import create_app, ready_routes, server_config
from segmentsync.logs import configure_logging
from segmentsync.observe import metrics
from segmentsync.runtime import Runtime
from segmentsync.settings import Settings, get_settings

log = logging.getLogger(__name__)

RESTART_PAUSE_SECONDS = 1.0  # before a dead process's replacement (no busy loop on a crash at start)
STOP_GRACE_SECONDS = 30.0  # a stopping process finishes its requests in flight within this, or is killed


def web_server(runtime: Runtime, settings: Settings, *, workers: bool) -> uvicorn.Server:
    """The web app of ``runtime`` under uvicorn, as each of ``serve``'s processes runs it."""
    app = create_app(runtime)
    app.state.runs_workers = workers  # /readyz then wants a live worker
    ready_routes(app)
    settle_memory()
    return uvicorn.Server(server_config(app, settings))


YOUNG_OBJECTS = 10_000  # the cyclic collector's first threshold (Python's default: 700)


def settle_memory() -> None:
    """Set what start-up made (modules, the app and its prepared routes: ≈ 300,000 objects,
    none of them ever garbage) aside from the cyclic garbage collector, and let it look at young
    objects less often.

    A list of 50 runs makes a few thousand short-lived objects, and with 25 requests at once many
    of them live long enough to reach the older generations, whose every collection went through
    all of start-up's objects: 2.2 s of a web process's CPU in GC for 1,700 requests (≈ 13 % of
    it), 0.48 s after this. ``gc.freeze`` is the standard library's own way (made for servers);
    garbage cycles wait a little longer (at most ``YOUNG_OBJECTS`` new objects) before they are freed.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])


# Each process listens on a socket of its own, all bound to the one address with SO_REUSEPORT
# (Linux): the kernel gives each new connection to one of them by a hash of the client's
# address and port, so connections arriving together are spread over the processes. On one
# shared socket the process that won the race to accept kept winning it: 37 of 50 readers on
# one process in one run; in another the 40 API readers on one, their reads waiting 440 ms (p50)
# on its one core while the other answered the 10 UI readers in 30 ms. Elsewhere (no such
# balancing): one shared socket.
REUSE_PORT = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def own_socket(config: uvicorn.Config, port: int, *, first: bool = False) -> socket.socket:
    """A listening socket on ``config``'s host and ``port``, beside the other web processes'.

    ``first``: the first process's, which makes sure nothing else listens there already: with
    SO_REUSEPORT a second ``serve`` on the same port, started by mistake by the same user, would
    otherwise share it silently (and run a second scheduler) instead of failing.
    """
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    if first and port:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((config.host, port))
            except OSError as error:
                log.error("cannot listen on %s:%s: %s", config.host, port, error)
                raise SystemExit(3) from None  # as uvicorn ends when its address is taken
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((config.host, port))
    sock.listen(config.backlog)  # connections wait in line from now, not refused
    if first:  # uvicorn's own line, which it writes only for a socket it binds itself
        address = f"[{config.host}]" if family == socket.AF_INET6 else config.host
        scheme = "https" if config.is_ssl else "http"
        logging.getLogger("uvicorn.error").info(
            "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)", scheme, address, sock.getsockname()[1]
        )
    return sock


class WebServer:
    """``serve``'s web app: in this process, and in ``settings.web_processes - 1`` more.

    Entered before anything counts a metric (they are then shared between the processes); leave
    it after :meth:`stop_others`.
    """

    def __init__(
        self, runtime: Runtime, settings: Settings, overrides: dict[str, Any], *, workers: bool
    ) -> None:
        self.runtime, self.settings, self.overrides, self.workers = runtime, settings, overrides, workers
        self._stack = contextlib.ExitStack()
        self.others: WebProcesses | None = None
        self.sockets: list[socket.socket] | None = None

    def __enter__(self) -> WebServer:
        if self.settings.web_processes > 1:
            shared = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="segmentsync-metrics-"))
            metrics.share_between_processes(Path(shared))
        self.server = web_server(self.runtime, self.settings, workers=self.workers)
        if self.settings.web_processes > 1:
            config = self.server.config
            if REUSE_PORT:
                self.sockets = [own_socket(config, config.port, first=True)]
                listening: socket.socket | int = self.sockets[0].getsockname()[1]  # the port, if it was 0
            else:
                self.sockets = [config.bind_socket()]
                self.sockets[0].listen(config.backlog)  # connections wait in line from now, not refused
                listening = self.sockets[0]
            self.others = WebProcesses(
                self.settings.web_processes - 1, listening, self.overrides, workers=self.workers
            )
            self.others.start()
        return self

    def run(self) -> None:
        self.server.run(sockets=self.sockets)

    def stop_others(self) -> None:
        if self.others is not None:
            self.others.stop()
            self.others = None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop_others()
        self._stack.close()


class WebProcesses:
    """The extra web processes of one ``serve``: started, kept alive, stopped with it."""

    def __init__(
        self, count: int, sock: socket.socket | int, overrides: dict[str, Any], *, workers: bool
    ) -> None:
        self.count = count
        self.sock = sock  # the shared socket, or the port each process listens on with its own
        self.overrides = overrides  # the command line's settings (host, port); the rest is the environment
        self.workers = workers  # readiness then wants a live worker, as in the first process
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[BaseProcess] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def _spawn(self) -> BaseProcess:
        process = self.context.Process(
            target=serve_child,
            args=(self.sock, self.overrides, os.getpid(), self.workers),
            name="segmentsync-web",
            daemon=True,  # ended with the first process if it exits without stopping them
        )
        process.start()
        return process

    def start(self) -> None:
        with self._lock:
            self.processes = [self._spawn() for _ in range(self.count)]
        self._watcher = threading.Thread(target=self._watch, name="web-processes", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self.stopping.wait(0.5):
            with self._lock:
                for n, process in enumerate(self.processes):
                    if process.is_alive() or self.stopping.is_set():
                        continue
                    log.error(
                        "web process %s ended (exit code %s); starting another", process.pid, process.exitcode
                    )
                    if self.stopping.wait(RESTART_PAUSE_SECONDS):
                        return
                    self.processes[n] = self._spawn()

    def stop(self) -> None:
        """Ask each process to finish its requests in flight and stop; kill those that do not."""
        self.stopping.set()
        if self._watcher is not None:
            self._watcher.join()
        with self._lock:
            processes = list(self.processes)
        for process in processes:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning(
                    "web process %s did not stop within %.0f s; killed", process.pid, STOP_GRACE_SECONDS
                )
                process.kill()
                process.join(5)


def _orphaned(parent: int) -> bool:
    return os.getppid() != parent


def serve_child(sock: socket.socket | int, overrides: dict[str, Any], parent: int, workers: bool) -> None:
    """One extra web process: the app on the socket it was given (or on its own socket on the port
    it was given, once the app is ready), until told to stop or orphaned."""
    settings = get_settings(**overrides)
    configure_logging(settings)
    runtime = Runtime.open(settings, migrate=False)  # the first process migrated the store
    try:
        server = web_server(runtime, settings, workers=workers)

        def watch_parent() -> None:  # the first process killed outright (kill -9): stop too
            while not server.should_exit:
                if _orphaned(parent):
                    log.warning("the first serve process is gone; this web process stops")
                    server.should_exit = True
                    return
                time.sleep(1.0)

        threading.Thread(target=watch_parent, name="watch-parent", daemon=True).start()
        server.run(sockets=[sock if isinstance(sock, socket.socket) else own_socket(server.config, sock)])
    finally:
        runtime.close()
