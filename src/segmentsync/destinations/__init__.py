"""Destinations: the code that talks to one platform, behind the ``Destination`` protocol.

``REGISTRY`` maps a connection type to its class; ``create_destination`` builds one::

    destination = create_destination(
        "campaign_monitor", credentials=creds, api_url=..., oauth_url=..., on_tokens=save_tokens
    )

``transport``, ``clock`` and ``sleep`` are the I/O seams (tests pass an ``httpx.MockTransport`` or
nothing, a fake clock, a no-op sleep); ``tuning`` sets timeouts, retries and polling.
See docs/destinations.md.
"""

from __future__ import annotations

import time

import httpx

from segmentsync.destinations.base import Credentials, Destination, OnTokens
from segmentsync.destinations.batching import pack
from segmentsync.destinations.campaign_monitor import CampaignMonitor
from segmentsync.destinations.constant_contact import ConstantContact
from segmentsync.destinations.policy import Tuning
from segmentsync.destinations.ratelimit import Clock, Sleep
from segmentsync.destinations.shared_limits import LimitStore
from segmentsync.errors import Invalid

REGISTRY: dict[str, type[CampaignMonitor] | type[ConstantContact]] = {
    CampaignMonitor.type: CampaignMonitor,
    ConstantContact.type: ConstantContact,
}

__all__ = ["REGISTRY", "LimitStore", "Tuning", "create_destination", "pack"]


def create_destination(
    type: str,
    *,
    credentials: Credentials,
    api_url: str,
    oauth_url: str,
    on_tokens: OnTokens | None,
    transport: httpx.BaseTransport | None = None,
    clock: Clock = time.time,
    sleep: Sleep = time.sleep,
    tuning: Tuning | None = None,
    limit_store: LimitStore | None = None,
) -> Destination:
    """A destination of connection type ``type`` ("campaign_monitor" or "constant_contact").

    ``limit_store``: share the platform's per-application limits with every process of that
    metadata store (Constant Contact); without it they are shared within this process only.
    """
    cls = REGISTRY.get(str(type))
    if cls is None:
        raise Invalid(
            "unknown destination type %(type)s; known: %(names)s",
            params={"type": repr(type), "names": ", ".join(REGISTRY)},
            field="type",
        )
    return cls(
        credentials=credentials,
        api_url=api_url,
        oauth_url=oauth_url,
        on_tokens=on_tokens,
        transport=transport,
        clock=clock,
        sleep=sleep,
        tuning=tuning,
        limit_store=limit_store,
    )
