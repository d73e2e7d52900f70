"""Serve both emulators from one process, each on its own port (0 = a free one)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

import uvicorn

from segmentsync.sandbox.campaign_monitor import create_app as campaign_monitor
from segmentsync.sandbox.constant_contact import create_app as constant_contact
from segmentsync.sandbox.faults import ASGIApp, DroppedConnection


def build_apps() -> dict[str, ASGIApp]:
    return {"campaign_monitor": campaign_monitor(), "constant_contact": constant_contact()}


class _QuietDrops(logging.Filter):
    """An injected dropped connection is the point, not an error worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio/uvloop set TCP_NODELAY only on sockets whose proto says TCP;
    # without it every answer written in two parts waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(
    apps: dict[str, ASGIApp],
    *,
    host: str,
    ports: dict[str, int],
    on_ready: Callable[[dict[str, str]], None],
) -> None:
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    servers: list[uvicorn.Server] = []
    sockets: list[socket.socket] = []
    urls: dict[str, str] = {}
    for name, app in apps.items():
        sock = bind(host, ports.get(name, 0))
        sockets.append(sock)
        bound_port = sock.getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        urls[name] = f"http://{shown_host}:{bound_port}"
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            backlog=2048,
        )
        servers.append(uvicorn.Server(config))
    on_ready(urls)
    await asyncio.gather(
        *(server.serve(sockets=[sock]) for server, sock in zip(servers, sockets, strict=True))
    )
