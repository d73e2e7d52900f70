"""Real receivers for the notification tests: a webhook server and an SMTP server on free loopback ports.

``Receiver`` is an HTTP server (a thread) that records every request and answers from a script:
a status code, or ``HANG`` (no answer until ``release()``, or until the caller gives up).
``Smtpd`` is aiosmtpd's server on a socket bound to port 0, keeping every message it receives.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

HANG = -1


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    script: list[int] = field(default_factory=list)  # answers in order; then `default`
    default: int = 200
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)
    hang_when: Callable[[dict[str, str]], bool] | None = None  # hang on the requests this picks
    url: str = ""

    def answer(self, headers: dict[str, str]) -> int:
        with self.lock:
            if self.hang_when is not None and self.hang_when(headers):
                return HANG
            return self.script.pop(0) if self.script else self.default

    def release(self) -> None:
        self.released.set()

    def ids(self) -> list[str]:
        with self.lock:
            return [r.headers["webhook-id"] for r in self.requests]


@contextmanager
def receiver(**options: Any) -> Iterator[Receiver]:
    state = Receiver(**options)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length)
            if len(body) < length:  # the sender died mid-request (kill -9): nothing was received
                self.close_connection = True
                return
            headers = {key.lower(): value for key, value in self.headers.items()}
            status = state.answer(headers)
            with state.lock:
                state.requests.append(Received(headers, body, status))
            if status == HANG:
                state.released.wait(60)
                status = 200
            try:
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:  # the sender gave up (a timeout) or was killed
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128  # several senders at once: never a refused connection

    server = Server(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release()
        server.shutdown()
        server.server_close()


class Smtpd(Controller):
    """aiosmtpd on a socket bound to a free loopback port."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []
        self.arrived = threading.Condition()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        super().__init__(self, hostname="127.0.0.1", port=self._sock.getsockname()[1])

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # aiosmtpd's hook
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        with self.arrived:
            self.messages.append((envelope, message_from_bytes(content, policy=policy.default)))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 30) -> list[tuple[Envelope, Message]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)


@contextmanager
def smtpd() -> Iterator[Smtpd]:
    server = Smtpd()
    server.start()
    try:
        yield server
    finally:
        server.stop()
