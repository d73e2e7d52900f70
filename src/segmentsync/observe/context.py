"""The run a log line belongs to: ``run_id``, ``export_id``, ``connection_id``, ``platform``,
``phase`` (and the ``worker``), as structured fields of every record written while it is handled.

The fields live in a context variable holding one mutable :class:`RunFields`: a thread started
for the run with :func:`carry` sees the same object, so a phase change made by the run's own
thread shows in its senders' lines too. :class:`ContextFilter` (on the log handler) copies them
onto each record that does not name them itself.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
FIELDS = ("run_id", "export_id", "connection_id", "platform", "phase", "worker")


@dataclass
class RunFields:
    run_id: int
    export_id: int | None = None
    connection_id: int | None = None
    platform: str | None = None
    phase: str | None = None
    worker: str | None = None


_current: contextvars.ContextVar[RunFields | None] = contextvars.ContextVar("segmentsync_run", default=None)


def current() -> RunFields | None:
    return _current.get()


@contextmanager
def run_fields(fields: RunFields) -> Iterator[RunFields]:
    """Every log line written in this block (and in threads started with :func:`carry`) carries ``fields``."""
    token = _current.set(fields)
    try:
        yield fields
    finally:
        _current.reset(token)


def carry(function: Callable[P, R]) -> Callable[P, R]:
    """``function``, to run in another thread with this thread's context (the run's fields, the
    current trace span): ``Thread(target=carry(f))``, ``pool.submit(carry(f), …)``."""
    context = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.copy().run(function, *args, **kwargs)  # a copy: one context per concurrent call

    return run


class ContextFilter(logging.Filter):
    """Adds the current run's fields to every record (a field given as ``extra`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _current.get()
        if fields is not None:
            for key, value in asdict(fields).items():
                if value is not None and not hasattr(record, key):
                    setattr(record, key, value)
        return True
