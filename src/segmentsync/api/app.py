"""The web application: REST API under /api/v1, the server-rendered UI, static files, metrics."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib import import_module
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import Depends, FastAPI
from starlette.middleware.sessions import SessionMiddleware

from segmentsync import __version__
from segmentsync.api import errors, metrics, openapi
from segmentsync.api.admission import Admission
from segmentsync.api.body_limit import BodyLimit
from segmentsync.observe import gauges, health, tracing
from segmentsync.runtime import Runtime
from segmentsync.settings import Settings
from segmentsync.web.headers import SecurityHeaders

if TYPE_CHECKING:
    import uvicorn

API_PREFIX = "/api/v1"
# Each domain keeps its routes in its own module exposing `router` (an APIRouter).
API_ROUTERS = (
    "segmentsync.api.me",
    "segmentsync.api.users",
    "segmentsync.api.audit",
    "segmentsync.api.profiles",
    "segmentsync.api.segments",
    "segmentsync.api.connections",
    "segmentsync.api.exports",
    "segmentsync.api.runs",
    "segmentsync.api.system",
    "segmentsync.api.config",
    "segmentsync.api.webhooks",
    "segmentsync.api.alerts",
)
WEB_MODULE = "segmentsync.web.app"  # exposes `mount(app)`


def _optional(module_name: str) -> object | None:
    try:
        return import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:  # that part has not been built
            return None
        raise


def session_secret(runtime: Runtime) -> str:
    """A signing secret for session cookies, derived from the vault key (nothing more to configure)."""
    return hashlib.sha256(b"segmentsync-session:" + runtime.vault.fingerprint_material()).hexdigest()


def server_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    """How ``serve`` runs the app: uvicorn believes no forwarded header itself.

    Its default believes ``X-Forwarded-For`` from 127.0.0.1, so anyone on the machine could
    forge the client address (escaping the sign-in throttle, lying to the audit log); the app
    believes the proxies named in ``SEGMENTSYNC_TRUSTED_PROXIES`` only (see :func:`create_app`).
    """
    import uvicorn  # lazy: uvicorn costs 0.03 s CPU of importing the app (tests, other ASGI servers)

    return uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, proxy_headers=False, server_header=False
    )


def threads_lifespan(threads: int) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Requests worked on at once (sync routes run on threads): ``SEGMENTSYNC_API_THREADS``,
    sized with the store's connection pool (see docs/operations.md, Sizing). The routes are
    made ready before the first request (:func:`ready_routes`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        ready_routes(app)
        yield

    return lifespan


def ready_routes(app: FastAPI) -> None:
    """Match a path no route has against every route, once, at start-up.

    FastAPI prepares its included routes (each one's parameters, body and response fields) when
    a request first looks for one: 0.4 s of CPU for this app's 171 routes, paid by whichever
    request comes first to each web process while the others queue behind it — under load, a
    1.8-2.2 s wait for everyone on a freshly started process. A path that matches nothing
    visits them all. Once per app: ``serve`` readies them before it sets start-up's objects
    aside (``web_processes.settle_memory``), and its lifespan then finds them ready.
    """
    if getattr(app.state, "routes_ready", False):
        return
    scope = {
        "type": "http",
        "path": "/\x00",
        "method": "GET",
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    for route in app.router.routes:
        route.matches(dict(scope))
    app.state.routes_ready = True


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        lifespan=threads_lifespan(runtime.settings.api_threads),
        title="segmentsync",
        version=__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # the Swagger page loads assets from a CDN; this app works offline
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.runs_workers = False  # `serve` with workers sets it: /readyz then wants a live worker
    errors.install(app)
    # No sign-in, no schema: for load balancers and orchestrators (see observe/health.py).
    app.add_route(health.HEALTHZ, health.healthz, include_in_schema=False)
    app.add_route(
        health.READYZ,
        health.readyz_for(runtime, workers=lambda: bool(app.state.runs_workers)),
        include_in_schema=False,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(runtime),
        session_cookie="segmentsync_session",
        same_site="lax",
        https_only=runtime.settings.secure_cookies,
        max_age=runtime.settings.session_max_hours * 3600,  # the server ends it then anyway
    )
    # Each module's router straight onto the app, not through one /api/v1 router: FastAPI matches
    # a request again at every level of included routers (GET /api/v1/runs spent 7 % of its CPU
    # finding its route, two levels deep).
    for name in API_ROUTERS:
        module = _optional(name)
        if module is not None:
            app.include_router(
                module.router,  # type: ignore[attr-defined]  # the module contract
                prefix=API_PREFIX,
                responses=errors.ERROR_RESPONSES,
                dependencies=[Depends(errors.finite_json_body)],  # no NaN or Infinity in any body
            )
    # around the session cookie and everything inside: requests wait for a place holding nothing
    app.add_middleware(Admission, places=runtime.settings.api_threads)
    app.add_middleware(BodyLimit)  # 413 for bodies over 1 MiB, before they are read
    # outermost: every answer (errors, 413s, static files) carries them
    app.add_middleware(SecurityHeaders, hsts=runtime.settings.secure_cookies)
    metrics.install(app)  # GET /metrics (any signed-in user or API token) and request counts
    gauges.watch(runtime)  # the queue and workers, read from the store at each scrape
    tracing.configure(runtime, app)  # with the otel extra and OTEL_* set: traces
    openapi.install(app)  # each operation says which actions of the policy table it requires
    proxies = runtime.settings.trusted_proxy_list
    if proxies:  # outermost: the client address is the one the proxy saw, for everything inside
        # lazy: 0.03 s CPU of importing the app, for a setting most installations leave unset (uvicorn's own, well kept)
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    web = _optional(WEB_MODULE)
    if web is not None:
        web.mount(app)  # type: ignore[attr-defined]  # the module contract
    return app
