"""The server-rendered web UI: pages on the same services as the API, static files, languages.

``mount(app)`` is called by :func:`segmentsync.api.app.create_app`. Each area keeps its pages in
``web/views/<area>.py`` exposing ``router``.
"""

from __future__ import annotations

from importlib import import_module

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

from segmentsync.web import i18n
from segmentsync.web.templating import STATIC_DIR

VIEWS = (
    "auth",
    "account",
    "connections",
    "segments",
    "exports",
    "runs",
    "system",
    "users",
    "audit",
    "webhooks",
)


def mount(app: FastAPI) -> None:
    i18n.load_all()  # a broken catalog stops the start-up, not a page view
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for name in VIEWS:
        module = import_module(f"segmentsync.web.views.{name}")
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/exports", status_code=303)
