"""Security headers on every answer: the pages, the API, static files and error pages alike.

* ``Content-Security-Policy``: scripts, styles, images and fetches from this site only — no
  inline script, no ``style=""`` attribute, no ``eval`` — no plugins, no ``<base>`` rewriting,
  and ``frame-ancestors 'none'``: no other page may frame ours (the connection wizard, a
  confirmation button) to trick a signed-in user into clicking.
* ``X-Frame-Options: DENY``: the same for browsers that predate ``frame-ancestors``.
* ``X-Content-Type-Options: nosniff``: a download or an error is never run as a script or page.
* ``Referrer-Policy: same-origin``: our URLs (ids, searches) are not sent to other sites.
* ``Cross-Origin-Opener-Policy: same-origin``: a page we link to cannot reach back into ours.
* ``Cache-Control: no-store`` on everything but static files: a shared or back-button cache never
  keeps a signed-in page or API answer.
* ``Strict-Transport-Security`` when cookies are HTTPS-only (``SEGMENTSYNC_SECURE_COOKIES``):
  a browser that saw the site over HTTPS never goes back to HTTP for it.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
HSTS = "max-age=31536000; includeSubDomains"
STATIC_PREFIX = "/static/"


def headers_for(path: str, *, hsts: bool) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if not path.startswith(STATIC_PREFIX):
        headers["Cache-Control"] = "no-store"
    if hsts:
        headers["Strict-Transport-Security"] = HSTS
    return headers


class SecurityHeaders:
    """ASGI middleware: adds :func:`headers_for` to every HTTP answer (a route's own values win)."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = headers_for(scope.get("path", ""), hsts=self.hsts)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
