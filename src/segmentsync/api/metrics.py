"""Prometheus metrics at ``/metrics``, for any active user (API token or session).

Prometheus sends the token with ``authorization: {type: Bearer, credentials_file: ...}`` in its
scrape config (see docs/api.md). Other parts add their own metrics to the default registry.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Response
from fastapi.routing import iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from segmentsync.api.deps import require
from segmentsync.auth.models import User
from segmentsync.auth.policy import Action
from segmentsync.observe.metrics import exposition

METRICS_PATH = "/metrics"

HTTP_REQUESTS = Counter(
    "segmentsync_http_requests_total",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "segmentsync_http_request_duration_seconds",
    "Time to answer HTTP requests, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

router = APIRouter()


@router.get(METRICS_PATH, include_in_schema=False)
def metrics(user: Annotated[User, Depends(require(Action.SYSTEM_STATUS))]) -> Response:
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI: no buffering of streamed answers).

    Requests are labelled with their route's template (``/api/v1/users/{user_id}``), never the
    raw path, so that label values stay few.
    """

    def __init__(self, app: ASGIApp, *, routes_of: FastAPI) -> None:
        self.app = app
        self.routes_of = routes_of
        self._paths: dict[int, str] = {}

    def _route_label(self, scope: Scope) -> str:
        # The router leaves the matched route in the scope; FastAPI's included routers keep it
        # without their prefixes, so the full template is looked up among the app's routes.
        route = scope.get("route")
        if route is None:
            return "unmatched"
        if id(route) not in self._paths:
            self._paths = {
                id(c.original_route): c.path or "" for c in iter_route_contexts(self.routes_of.routes)
            }
        return self._paths.get(id(route)) or str(getattr(route, "path", "unmatched"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route, method = self._route_label(scope), scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.add_middleware(MetricsMiddleware, routes_of=app)
