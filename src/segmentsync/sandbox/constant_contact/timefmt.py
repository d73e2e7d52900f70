"""Timestamps as the platform writes them (ISO-8601, UTC, ``Z``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def iso_ms(ts: float) -> str:
    """``2016-01-23T13:48:44.108Z`` (lists, activities, custom fields)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_s(ts: float) -> str:
    """``2024-10-30T18:56:35Z`` (contacts)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def day(ts: float) -> str:
    """``2024-10-30`` (a contact's ``deleted_at`` is a date)."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))
