"""Keyboard-only helpers for the browser tests: focus moves with Tab (and Shift+Tab), radios with
the arrow keys, checkboxes with Space, selects with the arrow keys; text is typed. The page is only
*read*, to know where the focus is."""

from __future__ import annotations

from typing import Any

FOCUSED = "(selector) => document.activeElement !== null && document.activeElement.matches(selector)"


def tab_to(page: Any, selector: str, *, back: bool = False, limit: int = 120) -> None:
    """Press Tab (or Shift+Tab) until the focused element matches ``selector``."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        if page.evaluate(FOCUSED, selector):
            return
    raise AssertionError(f"the keyboard never reached {selector}")


def choose(page: Any, value: str, *, limit: int = 60) -> None:
    """In the focused select, move with the arrow keys to the option whose value is ``value``."""
    page.keyboard.press("Home")
    for _ in range(limit):
        if page.evaluate("() => document.activeElement.value") == value:
            return
        page.keyboard.press("ArrowDown")
    raise AssertionError(f"the focused select has no option {value!r}")


def type_into(page: Any, selector: str, text: str, *, back: bool = False) -> None:
    tab_to(page, selector, back=back)
    page.keyboard.type(text)


def focused(page: Any, selector: str) -> bool:
    return bool(page.evaluate(FOCUSED, selector))
