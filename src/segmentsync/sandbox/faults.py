"""Fault injection shared by both emulators: latency, 5xx, 429, dropped connections, stalls, outages.

An ASGI middleware in front of an emulator. Control requests (``/_sandbox/...``) are never
affected. The emulator supplies the bodies of its own 5xx and 429 answers, so an injected error
looks exactly like the platform's.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FaultKind = Literal["server_error", "throttled"]
# (status, headers, body) of the platform's own answer for an injected fault
FaultResponder = Callable[[FaultKind], tuple[int, list[tuple[bytes, bytes]], bytes]]


class Faults(BaseModel):
    """What goes wrong, and how often. Shares are probabilities per request (0..1)."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0, ge=0, description="added before every API request")
    error_rate: float = Field(default=0, ge=0, le=1, description="share answered with a 5xx")
    throttle_rate: float = Field(default=0, ge=0, le=1, description="share answered with the platform's 429")
    drop_rate: float = Field(
        default=0, ge=0, le=1, description="share whose connection drops (half before, half after processing)"
    )
    stall_rate: float = Field(default=0, ge=0, le=1, description="share that stall, then drop")
    stall_seconds: float = Field(default=30, ge=0)
    outage_seconds: float = Field(default=0, ge=0, description="from now on, drop every request this long")
    outage_after_requests: int = Field(
        default=0,
        ge=0,
        description="with outage_seconds: let this many more affected requests through, then begin the outage",
    )
    path_pattern: str | None = Field(default=None, description="only paths matching this regex are affected")
    seed: int | None = None


class DroppedConnection(Exception):  # it is an event, not an error of ours
    """Raised after the response started, so that the server closes the connection mid-answer."""


class FaultState:
    def __init__(self) -> None:
        self.faults = Faults()
        self.outage_until = 0.0
        self.outage_countdown: int | None = None  # requests still let through before a pending outage
        self.rng = random.Random()
        self.injected: dict[str, int] = {}

    def update(self, changes: dict[str, Any]) -> Faults:
        merged = self.faults.model_dump() | changes
        self.faults = Faults.model_validate(merged)
        if "outage_seconds" in changes or "outage_after_requests" in changes:
            self.outage_until, self.outage_countdown = 0.0, None  # outage_seconds=0 ends any outage
            if self.faults.outage_seconds and self.faults.outage_after_requests:
                self.outage_countdown = self.faults.outage_after_requests
            elif self.faults.outage_seconds:
                self.outage_until = time.monotonic() + self.faults.outage_seconds
        if "seed" in changes:
            self.rng = random.Random(self.faults.seed)
        return self.faults

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]  # same fresh state as a new instance

    def in_outage(self) -> bool:
        """Whether this request falls in the outage; counts it towards a pending one."""
        if self.outage_countdown is not None:
            if self.outage_countdown > 0:
                self.outage_countdown -= 1
                return False
            self.outage_countdown = None
            self.outage_until = time.monotonic() + self.faults.outage_seconds
        return time.monotonic() < self.outage_until

    def count(self, kind: str) -> None:
        self.injected[kind] = self.injected.get(kind, 0) + 1


class FaultMiddleware:
    def __init__(self, app: ASGIApp, state: FaultState, responder: FaultResponder) -> None:
        self.app = app
        self.state = state
        self.responder = responder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        faults = self.state.faults
        if faults.path_pattern and not re.search(faults.path_pattern, path):
            await self.app(scope, receive, send)
            return
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if self.state.in_outage():
            self.state.count("outage")
            await _drop(send)
        roll = self.state.rng.random()
        for kind, share in (
            ("server_error", faults.error_rate),
            ("throttled", faults.throttle_rate),
            ("drop", faults.drop_rate),
            ("stall", faults.stall_rate),
        ):
            if roll < share:
                await self._inject(kind, scope, receive, send)
                return
            roll -= share
        await self.app(scope, receive, send)

    async def _inject(self, kind: str, scope: Scope, receive: Receive, send: Send) -> None:
        self.state.count(kind)
        if kind in ("server_error", "throttled"):
            status, headers, body = self.responder(kind)  # type: ignore[arg-type]  # checked above
            await _respond(send, status, headers, body)
        elif kind == "drop":
            if self.state.rng.random() < 0.5:
                await _drop(send)
            # processed, then the answer is lost: the client cannot know it succeeded
            await self.app(scope, receive, _swallow)
            await _drop(send)
        else:
            await asyncio.sleep(self.state.faults.stall_seconds)
            await _drop(send)


async def _swallow(message: Message) -> None:
    return None


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop(send: Send) -> None:
    # Promise a body that never comes, then fail: the server closes the connection.
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
    raise DroppedConnection


def apply_control(
    body: dict[str, Any], state: FaultState, update_limits: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """Handle ``POST /_sandbox/faults``: common fault keys here, the rest are the platform's limits.

    Keys not given keep their current values. Raises ``ValueError`` naming unknown keys.
    """
    fault_keys = {key: value for key, value in body.items() if key in Faults.model_fields}
    limit_keys = {key: value for key, value in body.items() if key not in Faults.model_fields}
    limits = update_limits(limit_keys)
    faults = state.update(fault_keys) if fault_keys else state.faults
    return {"faults": faults.model_dump(), "limits": limits, "injected": dict(state.injected)}
