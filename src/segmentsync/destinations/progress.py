"""How far the platform is with a batch it is still working on, for the run's live progress.

A Constant Contact import is an *activity* that reports its ``percent_done`` while it runs; a
batch may take many seconds there. The engine installs a hook around each batch
(:func:`reporting`, see ``engine/in_flight.py``); the destination calls :func:`report` with the
rows done so far of each part it submitted. Without a hook (the CLI's checks, tests) it does
nothing. A context variable: each batch runs in a thread of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Hook = Callable[[object, int], None]  # (the part of the batch, its rows done so far)
_hook: ContextVar[Hook | None] = ContextVar("segmentsync_batch_progress", default=None)


def report(part: object, rows_done: int) -> None:
    """The platform has done ``rows_done`` rows of ``part`` (e.g. one submitted activity)."""
    hook = _hook.get()
    if hook is not None:
        hook(part, rows_done)


@contextmanager
def reporting(hook: Hook) -> Iterator[None]:
    """Send this thread's reports to ``hook`` while the block runs."""
    token = _hook.set(hook)
    try:
        yield
    finally:
        _hook.reset(token)
