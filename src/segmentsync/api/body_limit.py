"""A limit on request bodies: 413 in the API's error shape, before a large body is read.

Nothing the API or the pages take is large (JSON documents and forms; profile files are loaded
from the command line), so a body over ``MAX_BODY_BYTES`` is refused: at once when its
``Content-Length`` says so, else as soon as the bytes received pass the limit (a chunked body).
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1_048_576  # 1 MiB


class BodyTooLarge(HTTPException):
    """Raised while the body is read; FastAPI passes HTTP exceptions on to the error handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=message(limit))


def message(limit: int) -> str:
    return f"the request body is larger than {limit:,} bytes ({limit / 1_048_576:g} MiB), the most this server takes"


def too_large(limit: int) -> JSONResponse:
    body = {"status": 413, "code": "too_large", "message": message(limit)}
    return JSONResponse({"error": body}, status_code=413, headers={"Connection": "close"})


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


class BodyLimit:
    """Pure ASGI middleware (no buffering); the outermost of ours, so the pages are covered too."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.limit:
            await too_large(self.limit)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await too_large(self.limit)(scope, receive, send)
