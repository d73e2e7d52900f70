"""`segmentsync serve`, `segmentsync worker` and `segmentsync schedule show|set`.

``serve`` runs everything in one process (the embedded default): the web app and REST API
(uvicorn), the scheduler and one worker. ``worker`` runs more workers (use PostgreSQL for
several). On Ctrl-C or SIGTERM the web server stops taking requests, the scheduler stops, and
each worker finishes its batches in flight and records them; a run it was executing is resumed
by the next worker that claims it (from its checkpoint). A second Ctrl-C quits at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Annotated, Any

import typer
from rich.table import Table

from segmentsync.errors import SegmentSyncError
from segmentsync.notifications.delivery import Sender
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


class Shutdown:
    """The first SIGINT/SIGTERM asks every loop to stop; a second one quits at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.server: Any = None  # the web server, told to stop too (a signal may come before it listens)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise SystemExit(130)
        err.print("stopping: workers finish their batches in flight (Ctrl-C again to quit now)")
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


def _open(settings: Settings) -> Runtime:
    from segmentsync.logs import configure_logging

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
) -> None:
    """Web UI + REST API + scheduler + a worker, in one process."""
    overrides: dict[str, Any] = {
        key: value for key, value in (("host", host), ("port", port)) if value is not None
    }
    settings = get_settings(**overrides)
    runtime = _open(settings)
    try:
        serve_runtime(runtime, settings, scheduler=scheduler, workers=workers)
    finally:
        runtime.close()


def serve_runtime(runtime: Runtime, settings: Settings, *, scheduler: bool = True, workers: int = 1) -> None:
    """Serve the app with the scheduler and workers until Ctrl-C (used by `serve` and `quickstart`)."""
    import uvicorn

    from segmentsync.api.app import create_app, server_config

    shutdown = Shutdown()
    shutdown.install()
    loops: list[tuple[str, Callable[[threading.Event], None]]] = []
    if scheduler:
        loops.append(("scheduler", Scheduler(runtime).run_forever))
    loops += [(f"worker-{n}", Worker(runtime).run_forever) for n in range(workers)]
    loops.append(("deliveries", Sender(runtime).run_forever))  # webhooks and alert e-mail
    threads = _threads(loops, shutdown.event)
    server = uvicorn.Server(server_config(create_app(runtime), settings))
    shutdown.server = server

    def announce() -> None:  # once the socket listens, so the address printed can be opened at once
        while not server.started:
            if shutdown.event.wait(0.02):
                return
        out.print(
            f"segmentsync on {settings.public_base_url} (API: {settings.public_base_url}/api/v1)",
            highlight=False,
        )

    threading.Thread(target=announce, name="announce", daemon=True).start()
    try:
        server.run()  # uvicorn hands SIGINT/SIGTERM to our handler when it has stopped serving
    finally:
        shutdown.event.set()
        for thread in threads:
            thread.join()


@app.command()
def worker(
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=64, help="workers in this process")] = 1,
) -> None:
    """Run workers that claim and execute queued runs (several: use PostgreSQL)."""
    settings = get_settings()
    runtime = _open(settings)
    if count > 1 and runtime.engine.dialect.name == "sqlite":
        err.print("note: SQLite lets one writer at a time; for several workers use PostgreSQL")
    shutdown = Shutdown()
    shutdown.install()
    loops = [(f"worker-{n}", Worker(runtime).run_forever) for n in range(count)]
    threads = _threads([*loops, ("deliveries", Sender(runtime).run_forever)], shutdown.event)
    out.print(f"{count} worker(s) waiting for runs; Ctrl-C to stop", highlight=False)
    try:
        while not shutdown.event.wait(1.0):
            pass
    finally:
        shutdown.event.set()
        for thread in threads:
            thread.join()
        runtime.close()


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
