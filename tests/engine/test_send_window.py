"""The sender's window of batches in flight: AIMD against the destination's pushback count."""

from __future__ import annotations

from segmentsync.destinations.base import Limits
from segmentsync.destinations.campaign_monitor import CampaignMonitor
from segmentsync.destinations.constant_contact import ConstantContact
from segmentsync.engine.send import Window


class Platform:
    """What the destination reports: answers that asked to slow down, so far."""

    def __init__(self) -> None:
        self.pushback = 0

    def count(self) -> int:
        return self.pushback


def sizes_after(window: Window, platform: Platform, script: str) -> list[int]:
    """``.`` a batch came back fine; ``!`` a batch came back after a 429 or 5xx."""
    seen = []
    for step in script:
        if step == "!":
            platform.pushback += 1
        window.acknowledged()
        seen.append(window.size)
    return seen


def test_it_grows_by_one_per_batch_up_to_the_ceiling_while_the_platform_keeps_up() -> None:
    platform = Platform()
    window = Window(4, 16, platform.count)
    assert window.size == 4
    assert sizes_after(window, platform, "." * 14) == [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 16, 16]


def test_a_pushback_halves_it_and_then_it_grows_one_per_window() -> None:
    platform = Platform()
    window = Window(4, 16, platform.count)
    sizes_after(window, platform, "....")  # 8
    assert sizes_after(window, platform, "!") == [4]
    # congestion avoidance: four acknowledged batches (a window of 4) before it is 5
    assert sizes_after(window, platform, "....") == [4, 4, 4, 5]
    assert sizes_after(window, platform, ".....") == [5, 5, 5, 5, 6]


def test_it_never_goes_below_one_batch() -> None:
    platform = Platform()
    window = Window(2, 8, platform.count)
    assert sizes_after(window, platform, "!!!!") == [1, 1, 1, 1]


def test_pushback_from_before_the_send_does_not_count() -> None:
    platform = Platform()
    platform.pushback = 7  # e.g. retried while reading the list's fields
    window = Window(4, 16, platform.count)
    assert sizes_after(window, platform, ".") == [5]


def test_without_a_ceiling_the_window_stays_put() -> None:
    platform = Platform()
    window = Window.of(Limits(40_000, 4_000_000, 2, 4), platform.count)
    assert sizes_after(window, platform, "......") == [2] * 6


def test_the_platforms_windows() -> None:
    """Campaign Monitor publishes no rate for imports: adaptive, 4 → 16. Constant Contact's
    4 requests/s would gain nothing from more than 2 imports in flight: fixed."""
    cm, cc = Window.of(CampaignMonitor.limits, int), Window.of(ConstantContact.limits, int)
    assert (cm.size, cm.ceiling) == (4, 16)
    assert (cc.size, cc.ceiling) == (2, 2)
