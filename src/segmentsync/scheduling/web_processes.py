"""More web processes for ``serve --processes N``: N - 1 processes answering on ``serve``'s socket.

One Python process answers requests on one core at most (the GIL): on a year-old store with
50 people reading while exports run, a single ``serve`` process is the limit, not the store
(docs/benchmarks.md). ``serve --processes N`` binds the listening socket once and hands it to
N - 1 more processes started fresh (``spawn``: nothing of the parent's threads or connections
is copied), each with the web app and REST API and its own store connections; the kernel gives
each new connection to whichever process accepts it first. The scheduler, the workers and the
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
            self.sockets = [config.bind_socket()]
            self.sockets[0].listen(config.backlog)  # connections wait in line from now, not refused
            self.others = WebProcesses(
                self.settings.web_processes - 1, self.sockets[0], self.overrides, workers=self.workers
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

    def __init__(self, count: int, sock: socket.socket, overrides: dict[str, Any], *, workers: bool) -> None:
        self.count = count
        self.sock = sock
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


def serve_child(sock: socket.socket, overrides: dict[str, Any], parent: int, workers: bool) -> None:
    """One extra web process: the app on the socket it was given, until told to stop or orphaned."""
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
        server.run(sockets=[sock])
    finally:
        runtime.close()
