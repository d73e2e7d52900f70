"""`segmentsync serve`, `segmentsync worker` and `segmentsync schedule show|set`.

``serve`` runs everything in one process (the embedded default): the web app and REST API
(uvicorn), the scheduler and one worker. ``worker`` runs more workers (use PostgreSQL for
several). On Ctrl-C or SIGTERM the web server stops taking requests, the scheduler stops, and
each worker finishes its batches in flight and records them; a run it was executing is resumed
by the next worker that claims it (from its checkpoint). A second Ctrl-C quits at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.table import Table

from segmentsync.errors import SegmentSyncError
from segmentsync.logs import configure_logging
from segmentsync.notifications.delivery import Sender
from segmentsync.observe import tracing
from segmentsync.runtime import Runtime
from segmentsync.scheduling import schedule
from segmentsync.scheduling.scheduler import Scheduler
from segmentsync.scheduling.worker import Worker
from segmentsync.settings import Settings, get_settings
from segmentsync.terminal import AsUser, Json, actor, err, open_runtime, out, print_json

app = typer.Typer()
schedule_app = typer.Typer(no_args_is_help=True, help="The system refresh schedule (System > Schedule).")
app.add_typer(schedule_app, name="schedule")
log = logging.getLogger(__name__)


def say(settings: Settings, message: str, *, to_err: bool = False, level: int = logging.INFO) -> None:
    """A line for the operator: a log record in JSON mode (never a plain-text line there), else printed."""
    if settings.log_format == "json":
        log.log(level, message)
    else:
        (err if to_err else out).print(message, highlight=False)


class Shutdown:
    """The first SIGINT/SIGTERM asks every loop to stop; a second one quits at once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.event = threading.Event()
        self.server: Any = None  # the web server, told to stop too (a signal may come before it listens)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise SystemExit(130)
        say(
            self.settings,
            "stopping: workers finish their batches in flight (Ctrl-C again to quit now)",
            to_err=True,
        )
        self.event.set()
        if self.server is not None:
            self.server.should_exit = True

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self.handle)


def _threads(
    targets: list[tuple[str, Callable[[threading.Event], None]]], stop: threading.Event
) -> list[threading.Thread]:
    # Daemons: a second Ctrl-C must not wait for them.
    threads = [
        threading.Thread(target=target, args=(stop,), name=name, daemon=True) for name, target in targets
    ]
    for thread in threads:
        thread.start()
    return threads


def lower_priority(nice: int) -> int:
    """Lower this process's CPU priority by ``nice`` (as ``nice -n``; the kernel stops at 19) and
    return its niceness: where cores are scarce, runs yield them to the web process. On Linux a
    niceness is a thread's own: the threads imports have started already (DuckDB's allocator's)
    get it too; threads started later inherit it."""
    if not hasattr(os, "nice"):  # Windows: as started
        return 0
    niceness = os.nice(nice)
    tasks = Path("/proc/self/task")
    if nice and tasks.is_dir():
        for task in tasks.iterdir():
            with contextlib.suppress(OSError, ValueError):  # a thread that just ended
                tid = int(task.name)
                os.setpriority(os.PRIO_PROCESS, tid, max(niceness, os.getpriority(os.PRIO_PROCESS, tid)))
    return niceness


def _open(settings: Settings) -> Runtime:
    configure_logging(settings)
    try:
        return Runtime.open(settings)
    except SegmentSyncError as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(1) from None


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(
            help="interface to listen on (default 127.0.0.1)", envvar="SEGMENTSYNC_HOST", show_envvar=True
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="port (default 8000)", envvar="SEGMENTSYNC_PORT", show_envvar=True)
    ] = None,
    scheduler: Annotated[
        bool, typer.Option("--scheduler/--no-scheduler", help="run the scheduler here")
    ] = True,
    workers: Annotated[int, typer.Option("--workers", min=0, max=32, help="workers in this process")] = 1,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=1,
            max=64,
            help="web processes answering on the port (default 1; about one per core for many readers)",
            envvar="SEGMENTSYNC_WEB_PROCESSES",
            show_envvar=True,
        ),
    ] = None,
) -> None:
    """Web UI + REST API + scheduler + a worker, in one process (or the web app in several)."""
    overrides: dict[str, Any] = {
        key: value
        for key, value in (("host", host), ("port", port), ("web_processes", processes))
        if value is not None
    }
    settings = get_settings(**overrides)
    runtime = _open(settings)
    try:
        serve_runtime(runtime, settings, scheduler=scheduler, workers=workers, overrides=overrides)
    finally:
        runtime.close()


def serve_runtime(
    runtime: Runtime,
    settings: Settings,
    *,
    scheduler: bool = True,
    workers: int = 1,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Serve the app with the scheduler and workers until Ctrl-C (used by `serve` and `quickstart`).

    With ``settings.web_processes`` above 1 the app answers in that many processes on one port
    (``scheduling.web_processes``); the scheduler and workers run in this one only.
    """
    # lazy: the web app and uvicorn cost 0.3 s CPU of every command's start-up
    from segmentsync.scheduling.web_processes import WebServer

    shutdown = Shutdown(settings)
    shutdown.install()
    with WebServer(runtime, settings, overrides or {}, workers=workers > 0) as web:
        loops: list[tuple[str, Callable[[threading.Event], None]]] = []
        if scheduler:
            loops.append(("scheduler", Scheduler(runtime).run_forever))
        loops += [(f"worker-{n}", Worker(runtime).run_forever) for n in range(workers)]
        loops.append(("deliveries", Sender(runtime).run_forever))  # webhooks and alert e-mail
        threads = _threads(loops, shutdown.event)
        shutdown.server = web.server

        def announce() -> None:  # once the socket listens, so the address printed can be opened at once
            while not web.server.started:
                if shutdown.event.wait(0.02):
                    return
            say(
                settings,
                f"segmentsync on {settings.public_base_url} (API: {settings.public_base_url}/api/v1)",
            )

        threading.Thread(target=announce, name="announce", daemon=True).start()
        try:
            web.run()  # uvicorn hands SIGINT/SIGTERM to our handler when it has stopped serving
        finally:
            shutdown.event.set()
            web.stop_others()
            for thread in threads:
                thread.join()


@app.command()
def worker(
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=64, help="workers in this process")] = 1,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="serve /healthz, /readyz and /metrics on this port (0: any free port, logged)",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="interface for --metrics-port (no sign-in there)")
    ] = "127.0.0.1",
) -> None:
    """Run workers that claim and execute queued runs (several: use PostgreSQL)."""
    settings = get_settings()
    lower_priority(settings.worker_nice)  # before any thread starts: they all inherit it
    runtime = _open(settings)
    if count > 1 and runtime.engine.dialect.name == "sqlite":
        say(
            settings,
            "note: SQLite lets one writer at a time; for several workers use PostgreSQL",
            to_err=True,
        )
    shutdown = Shutdown(settings)
    shutdown.install()
    tracing.configure(runtime)
    server = None if metrics_port is None else _serve_metrics(runtime, settings, metrics_host, metrics_port)
    loops = [(f"worker-{n}", Worker(runtime).run_forever) for n in range(count)]
    threads = _threads([*loops, ("deliveries", Sender(runtime).run_forever)], shutdown.event)
    say(settings, f"{count} worker(s) waiting for runs; Ctrl-C to stop")
    try:
        while not shutdown.event.wait(1.0):
            pass
    finally:
        shutdown.event.set()
        for thread in threads:
            thread.join()
        if server is not None:
            server.stop()
        runtime.close()


class MetricsServer:
    """uvicorn on its own thread, serving ``observe.health.worker_app``."""

    def __init__(self, runtime: Runtime, host: str, port: int) -> None:
        # lazy: uvicorn costs 0.04 s CPU of every command's start-up
        import uvicorn

        # lazy: the health app imports FastAPI (a worker without --metrics-port never needs it)
        from segmentsync.observe.health import worker_app

        config = uvicorn.Config(
            worker_app(runtime), host=host, port=port, log_config=None, access_log=False, server_header=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="metrics-server", daemon=True)

    def start(self) -> str:
        """Start serving; returns the address it listens on (RuntimeError if it could not bind)."""
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the metrics server did not start (is the port in use?)")
            self.thread.join(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _serve_metrics(runtime: Runtime, settings: Settings, host: str, port: int) -> MetricsServer:
    server = MetricsServer(runtime, host, port)
    try:
        address = server.start()
    except (RuntimeError, OSError) as exc:
        say(
            settings, f"error: cannot serve metrics on {host}:{port}: {exc}", to_err=True, level=logging.ERROR
        )
        runtime.close()
        raise typer.Exit(1) from None
    log.info(
        "metrics, health and readiness on %s (/metrics, /healthz, /readyz)",
        address,
        extra={"metrics_url": address},
    )
    return server


# ---------------------------------------------------------------- schedule show | set


def _print_schedule(view: schedule.ScheduleOut, as_json: bool = False) -> None:
    if as_json:
        print_json(view.model_dump(mode="json"))
        return
    out.print(f"System refresh: {view.description}", highlight=False)
    zone = schedule.zone(view.timezone)
    if view.next_refreshes:
        table = Table("next refresh", "UTC")
        for instant in view.next_refreshes:
            table.add_row(f"{instant.astimezone(zone):%a %Y-%m-%d %H:%M %Z}", f"{instant:%Y-%m-%d %H:%M}")
        out.print(table)


@schedule_app.command("show")
def schedule_show(as_user: AsUser = None, as_json: Json = False) -> None:
    """The system refresh schedule and its next refreshes."""
    with open_runtime() as runtime, runtime.readers() as session:
        view = schedule.get(session=session, actor=actor(session, as_user), now=runtime.clock())
    _print_schedule(view, as_json)


@schedule_app.command("set")
def schedule_set(
    enabled: Annotated[
        bool | None, typer.Option("--on/--off", help="turn the system refresh on or off")
    ] = None,
    frequency: Annotated[str | None, typer.Option("--frequency", help="daily or weekly")] = None,
    days: Annotated[str | None, typer.Option("--days", help="weekly: e.g. mon,wed,fri")] = None,
    times: Annotated[str | None, typer.Option("--times", help="up to four, e.g. 06:00,18:30")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", help="e.g. Europe/Warsaw")] = None,
    as_user: AsUser = None,
    as_json: Json = False,
) -> None:
    """Change the system refresh schedule (admins); options not given keep their value."""
    with open_runtime() as runtime, runtime.sessions() as session, session.begin():
        user = actor(session, as_user)
        current = schedule.view(schedule.load(session), now=runtime.clock())
        data = schedule.ScheduleIn.model_validate(
            {
                "enabled": current.enabled if enabled is None else enabled,
                "frequency": frequency or current.frequency,
                "weekdays": current.weekdays if days is None else [d for d in days.split(",") if d.strip()],
                "times": current.times if times is None else [t for t in times.split(",") if t.strip()],
                "timezone": timezone or current.timezone,
            }
        )
        view = schedule.update(session=session, data=data, actor=user, now=runtime.clock())
    _print_schedule(view, as_json)
