"""Pages answer errors with pages: sign-in for strangers, an error page for the rest.

The API's handlers (``api/errors.py``) answer JSON; a page route catches domain errors itself
(also those of its dependencies) through :class:`WebRoute`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from segmentsync.errors import NotFound, SegmentSyncError, Unauthenticated
from segmentsync.web.page import Page, any_page

log = logging.getLogger(__name__)
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)


def error_page(request: Request, error: SegmentSyncError) -> Response:
    page: Page = getattr(request.state, "page", None) or any_page(request)
    return page.render(
        "error.html", status=error.status, error=error, message=page.error_text(error), title=page._("Error")
    )


class WebRoute(APIRoute):
    """A route whose domain errors become pages (and sign-in redirects) instead of JSON."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:  # e.g. a word where the path wants an id
                return error_page(
                    request,
                    NotFound("no such page: %(value)s", params={"value": exc.errors()[0].get("msg", "")}),
                )
            except Unauthenticated:
                return sign_in_redirect(request)
            except SegmentSyncError as error:
                log.info("page %s %s: %s", request.method, request.url.path, error.message)
                return error_page(request, error)

        return handle


def web_router() -> APIRouter:
    """A router for pages (kept out of the OpenAPI document, which describes the API)."""
    return APIRouter(route_class=WebRoute, include_in_schema=False)
