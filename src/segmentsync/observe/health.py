"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work), and the small HTTP
server a ``segmentsync worker --metrics-port`` process serves them on, with ``/metrics``.

``/healthz`` touches nothing: 200 ``{"status": "ok"}`` as long as the process serves requests.
``/readyz`` checks, each within :data:`CHECK_SECONDS`: the metadata store answers; its schema is
at this code's migration; the profile source answers (a source without its table yet is
reachable: the body notes it); and, in a process that runs workers, at least one worker's
heartbeat is younger than the lease. 200 when all pass, else 503; the JSON body names each check
and what failed, e.g. ``{"status": "not ready", "failing": ["store"], "checks": {"store": {"ok":
false, "error": "OperationalError: ..."}, ...}}``. Neither needs a sign-in (a load balancer or
Kubernetes probe has none) and neither says more than ok or why not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from segmentsync.db import SCHEMA_HEAD, database_now
from segmentsync.errors import NotFound
from segmentsync.logs import redact
from segmentsync.observe import gauges
from segmentsync.observe.metrics import exposition
from segmentsync.runtime import Runtime
from segmentsync.scheduling.models import WorkerBeat

log = logging.getLogger(__name__)
CHECK_SECONDS = 5.0  # a check that takes longer fails (a probe must not hang on a dead warehouse)
HEALTHZ, READYZ = "/healthz", "/readyz"


@dataclass
class Readiness:
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failing(self) -> list[str]:
        return [name for name, check in self.checks.items() if not check["ok"]]

    @property
    def ready(self) -> bool:
        return not self.failing

    def body(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "not ready",
            "failing": self.failing,
            "checks": self.checks,
        }


def _within(seconds: float, check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``check()``, or a failure if it raises or takes longer than ``seconds`` (left to finish alone)."""
    future: Future[dict[str, Any]] = Future()

    def run() -> None:
        try:
            future.set_result(check())
        except BaseException as exc:  # reported, never raised into the probe
            future.set_exception(exc)

    threading.Thread(target=run, name="readyz-check", daemon=True).start()
    try:
        return future.result(timeout=seconds)
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {seconds:g} s"}
    except NotFound as exc:  # reachable, but not set up yet (no profile store or table)
        return {"ok": True, "note": redact(exc.message)}
    except Exception as exc:
        return {"ok": False, "error": redact(f"{exc.__class__.__name__}: {exc}")[:500]}


def _store(runtime: Runtime) -> dict[str, Any]:
    with runtime.engine.connect() as connection:
        versions = list(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    return {"ok": True, "schema": versions[0] if len(versions) == 1 else versions}


def _profiles(runtime: Runtime) -> dict[str, Any]:
    runtime.profiles.table()  # connects and reads the table's schema
    return {"ok": True}


def _workers(runtime: Runtime) -> dict[str, Any]:
    with runtime.readers() as session:
        since = database_now(session) - timedelta(seconds=runtime.settings.worker_lease_seconds)
        alive = session.scalar(sa.select(sa.func.count()).where(WorkerBeat.heartbeat_at > since)) or 0
    if alive:
        return {"ok": True, "alive": alive}
    return {"ok": False, "alive": 0, "error": "no worker has sent a heartbeat within the lease"}


def readiness(runtime: Runtime, *, workers: bool) -> Readiness:
    """The checks of ``/readyz`` (``workers``: this process runs workers, so one must be alive)."""
    result = Readiness()
    store = _within(CHECK_SECONDS, lambda: _store(runtime))
    result.checks["store"] = {k: v for k, v in store.items() if k != "schema"}
    if store["ok"]:
        schema = store["schema"]
        result.checks["migrations"] = (
            {"ok": True, "head": SCHEMA_HEAD}
            if schema == SCHEMA_HEAD
            else {"ok": False, "head": SCHEMA_HEAD, "store": schema,
                  "error": f"the store's schema is at {schema}, this code needs {SCHEMA_HEAD}"}
        )  # fmt: skip
    else:
        result.checks["migrations"] = {"ok": False, "error": "the store did not answer"}
    result.checks["profiles"] = _within(CHECK_SECONDS, lambda: _profiles(runtime))
    if workers:
        result.checks["workers"] = (
            _within(CHECK_SECONDS, lambda: _workers(runtime))
            if store["ok"]
            else {"ok": False, "error": "the store did not answer"}
        )
    if not result.ready:
        log.warning("not ready: %s", ", ".join(result.failing), extra={"failing": result.failing})
    return result


def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def readyz_for(runtime: Runtime, *, workers: Callable[[], bool]) -> Callable[[Request], Response]:
    def readyz(request: Request) -> Response:
        result = readiness(runtime, workers=workers())
        return JSONResponse(result.body(), status_code=200 if result.ready else 503)

    return readyz


def metrics(request: Request) -> Response:
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


def worker_app(runtime: Runtime) -> Starlette:
    """What ``segmentsync worker --metrics-port`` serves: health, readiness, metrics (no sign-in:
    bind it to an interface only Prometheus and the orchestrator reach)."""
    gauges.watch(runtime)  # the queue and workers, read from the store at each scrape
    return Starlette(
        routes=[
            Route(HEALTHZ, healthz),
            Route(READYZ, readyz_for(runtime, workers=lambda: True)),
            Route("/metrics", metrics),
        ]
    )
