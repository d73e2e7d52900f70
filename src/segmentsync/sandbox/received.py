"""Times each address reached a list, counted by both emulators for reliability tests.

Off until a test turns it on for a list (``POST /_sandbox/lists/{id}/received``), so the emulators
pay nothing for it at millions of subscribers.
"""

from __future__ import annotations

import heapq
from typing import Any


def received_summary(counts: dict[str, int] | None) -> dict[str, Any]:
    """Addresses by times received (``{"1": n, "2": m}``) and the five received most often."""
    times: dict[str, int] = {}
    for count in (counts or {}).values():
        times[str(count)] = times.get(str(count), 0) + 1
    most = heapq.nlargest(5, (counts or {}).items(), key=lambda item: item[1])
    return {
        "counting": counts is not None,
        "addresses": len(counts or {}),
        "times": times,
        "most": [{"email": email, "times": count} for email, count in most],
    }
