"""At most ``SEGMENTSYNC_API_THREADS`` requests worked on at once in a web process; the others
wait their turn in the event loop, holding nothing.

Without it, a crowd larger than the threads could stall a process for the store pool's timeout:
a request takes its store connection on one thread hop (signing in) and needs another for its
route, and anyio's threads go to whoever asks first. When every thread is taken by a new request
waiting for a connection, and every connection by a request waiting for a thread, nothing moves
until the pool timeout (10 s) answers ``503 store_busy`` — measured with 44 readers on a process
of 8 threads and 24 connections: 11-12 s stalls and 8 errors in 15 s. Admitted requests, no more
than the threads, never need more connections than the pool has (keep the pool at least as large
as the threads, docs/operations.md, Sizing), so every one of them gets its thread in turn.

A request leaves when its answer starts: its transaction has ended by then (``get_session`` with
``scope="function"``), and a long download streams on without holding a place. ``/healthz`` and
the static files, which touch no store, are never held back.
"""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from segmentsync.observe.health import HEALTHZ

NOT_HELD = (HEALTHZ, "/static/")


class Admission:
    """Pure ASGI middleware: a first-come, first-served place for each request that may use the store."""

    def __init__(self, app: ASGIApp, places: int) -> None:
        self.app = app
        self.places = anyio.Semaphore(places)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(NOT_HELD):
            await self.app(scope, receive, send)
            return
        await self.places.acquire()
        held = True

        def leave() -> None:
            nonlocal held
            if held:
                held = False
                self.places.release()

        async def answering(message: Message) -> None:
            if message["type"] == "http.response.start":
                leave()
            await send(message)

        try:
            await self.app(scope, receive, answering)
        finally:
            leave()
