"""Emulator of the Campaign Monitor API v3.3 (``create_app``), faithful to ``reference/``.

See docs/sandbox-campaign-monitor.md for what is emulated and every choice made where CM's own
documentation is silent.
"""

from segmentsync.sandbox.campaign_monitor.app import create_app

__all__ = ["create_app"]
