"""Every page, in one browser session: reached by keyboard, accessible (axe-core), no sideways scroll.

One admin first builds everything with the keyboard only — the connection wizard (Campaign
Monitor, API key), a segment in the rule builder, the export form, a run: no click and no
``fill``; focus moves with Tab (and Shift+Tab), radios with the arrow keys, checkboxes with
Space, selects with the arrow keys, text is typed and buttons are pressed with Enter (the page is
only *read*, to know where the focus is). A week of past runs is added for the charts. Then every
page and state of the UI is visited at 1366 × 900 in English, again at 390 × 844 (a phone), and at
1366 px in Polish, whose words are the longest. On each:

* the page itself never scrolls sideways: ``document.documentElement.scrollWidth <= innerWidth``
  (wide tables scroll inside their own box), and the exports list fits its box at 1366 px;
* axe-core finds no violation at all (any impact: serious and critical ones fail, and so do the
  minor ones, none being explained away);
* the charts (Chart.js, vendored) are drawn on the export, run and Status pages.

Screenshots (desktop and phone) go to docs/screenshots when SEGMENTSYNC_SCREENSHOTS names it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from segmentsync.auth.models import User
from segmentsync.connections.models import Connection
from segmentsync.db import transaction
from segmentsync.exports.models import Export, Run, RunStatus, Trigger
from segmentsync.segments.models import Segment

from .conftest import ADMIN, PASSWORD, REJECTED_EMAIL, Live, screenshot
from .keyboard import choose, tab_to, type_into

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
AXE = Axe()
BLOCKING = ("serious", "critical")
# The outermost elements that stick out on the right (not counting those inside a scrolling box).
WIDEST = """[...document.querySelectorAll("body *")].filter((node) => {
  if (node.getBoundingClientRect().right <= window.innerWidth + 0.5) return false;
  for (let up = node.parentElement; up; up = up.parentElement) {
    if (getComputedStyle(up).overflowX !== "visible") return false;
    if (up.getBoundingClientRect().right > window.innerWidth + 0.5) return false;
  }
  return true;
}).slice(0, 4).map((node) => `${node.tagName.toLowerCase()}.${node.className}`).join(", ")"""
# Past runs of the export, for its charts: (days ago, status, new, updated, unchanged, removed, rejected, seconds).
CONNECTION = "Acme newsletter (Campaign Monitor, main account)"
SEGMENT = "Buyers in Poland with at least one order"
EXPORT = "Poland buyers to the Campaign Monitor newsletter"
LIST = "Newsletter subscribers who bought something in the last year"
HISTORY = [
    (9, RunStatus.SUCCEEDED, 30, 0, 0, 0, 0, 12),
    (7, RunStatus.SUCCEEDED_WITH_REJECTIONS, 4, 6, 20, 1, 2, 9),
    (5, RunStatus.FAILED, 0, 0, 0, 0, 0, 3),
    (3, RunStatus.SUCCEEDED, 6, 3, 25, 2, 0, 8),
    (1, RunStatus.SUCCEEDED_WITH_REJECTIONS, 2, 5, 28, 0, 1, 7),
]


def _by_keyboard(page: Any, live: Live) -> dict[str, int]:
    """Sign in, add a connection, a segment and an export, run it: the keyboard only. The ids made."""
    page.goto("/sign-in")
    type_into(page, "#f-email", ADMIN)
    type_into(page, "#f-password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/exports")

    # The connection wizard, with a Campaign Monitor API key.
    page.goto("/connections/new")
    tab_to(page, "input[name=type][value=campaign_monitor]")
    page.keyboard.press("Space")
    type_into(page, "#f-name", CONNECTION)
    tab_to(page, "input[name=shared]")  # the group's checked radio: Administrators
    page.keyboard.press("ArrowDown")  # → Administrators and contributors
    tab_to(page, "input[name=consent]")
    page.keyboard.press("Space")
    tab_to(page, "button[value=connect]")
    page.keyboard.press("Enter")
    wizard = page.get_by_test_id("connection-wizard")
    expect(wizard.locator("[data-step='6']")).to_contain_text("Authenticate with Campaign Monitor")
    expect(page.locator("input[name=shared][value=contributors]")).to_be_checked()
    tab_to(page, "details.api-key summary")
    page.keyboard.press("Enter")  # opens "Or use an API key"
    type_into(page, "#f-api_key", live.cm_client["ApiKey"])
    type_into(page, "#f-client_id", live.cm_client["ClientID"])
    tab_to(page, "input[name=add_me]")
    page.keyboard.press("Space")
    tab_to(page, "[data-testid=save-api-key]")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("connections")).to_contain_text(CONNECTION)

    # The rule builder: country is PL and orders ≥ 1.
    page.goto("/segments/new")
    type_into(page, "#f-name", SEGMENT)
    for column, operator, value in (("country", "eq", "PL"), ("orders", "ge", "1")):
        tab_to(page, ".rb-add-condition")
        page.keyboard.press("Enter")
        tab_to(page, ".rb-cond:last-of-type select.rb-column", back=True)
        choose(page, column)
        tab_to(page, ".rb-cond:last-of-type select.rb-operator")
        choose(page, operator)
        type_into(page, ".rb-cond:last-of-type .rb-value", value)
    conditions = page.locator("#rule-builder .rb-cond")
    expect(conditions).to_have_count(2)
    tab_to(page, "[data-testid=save-segment]")
    page.keyboard.press("Enter")
    # Both conditions were set: 9 profiles in Poland with an order (10 in Poland, 37 with an order).
    expect(page.get_by_test_id("member-count")).to_have_text("9")
    expect(page.locator("#f-name")).to_have_value(SEGMENT)

    # The export form: connection, a list picked from the platform, the email column, the segment.
    list_id = live.cm_list(LIST)
    page.goto("/exports/new")
    type_into(page, "#f-name", EXPORT)
    tab_to(page, "#f-connection_id")
    connection = page.locator("#f-connection_id option", has_text=CONNECTION)
    choose(page, connection.get_attribute("value"))
    expect(page.locator("#list-picker option", has_text=LIST)).to_have_count(1)
    tab_to(page, "#list-picker")
    choose(page, list_id)
    expect(page.locator("#f-list_id")).to_have_value(list_id)
    tab_to(page, "#f-email_column")
    choose(page, "email")
    segment = page.get_by_test_id("segment-pick").locator("label", has_text=SEGMENT).locator("input")
    tab_to(page, f"[data-testid=segment-pick] input[value='{segment.get_attribute('value')}']")
    page.keyboard.press("Space")
    tab_to(page, "[data-testid=save-export]")
    page.keyboard.press("Enter")
    expect(page.locator(".notice-ok").first).to_contain_text("Saving never runs it")
    tab_to(page, "[data-testid=run]")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("run-status")).to_have_text("Succeeded with rejections", timeout=60_000)
    expect(page.get_by_test_id("run-rows")).to_contain_text(REJECTED_EMAIL)
    ids = {"run": int(page.url.rsplit("/", 1)[1])}
    with transaction(live.runtime.sessions) as session:
        ids["connection"] = session.scalars(
            sa.select(Connection.id).where(Connection.name == CONNECTION)
        ).one()
        ids["segment"] = session.scalars(sa.select(Segment.id).where(Segment.name == SEGMENT)).one()
        ids["export"] = session.scalars(sa.select(Export.id).where(Export.name == EXPORT)).one()
        ids["user"] = session.scalars(sa.select(User.id).where(User.email == ADMIN)).one()
    return ids


def _history(live: Live, export_id: int) -> None:
    """A week and a half of past runs of the export, for its charts and the Status chart."""
    now = live.runtime.clock()
    with transaction(live.runtime.sessions) as session:
        export = session.get(Export, export_id)
        assert export is not None
        for days, status, new, updated, unchanged, removed, rejected, seconds in HISTORY:
            started = now - timedelta(days=days, hours=2)
            session.add(
                Run(export_id=export.id, export_name=export.name, trigger=Trigger.SCHEDULE, status=status,
                    created_at=started, started_at=started, finished_at=started + timedelta(seconds=seconds),
                    profiles=new + updated + unchanged + rejected, new=new, updated=updated, unchanged=unchanged,
                    removed=removed, rejected=rejected)
            )  # fmt: skip


def _pages(ids: dict[str, int]) -> list[str]:
    return [
        "/exports", f"/exports/{ids['export']}", "/exports/new", f"/exports/{ids['export']}/edit",
        f"/runs/{ids['run']}", "/segments", "/segments/new", f"/segments/{ids['segment']}",
        "/connections", "/connections/new", f"/connections/{ids['connection']}", "/system/schedule",
        "/system/status", "/users", f"/users/{ids['user']}", "/audit", "/account", "/exports/999999",
    ]  # fmt: skip


class Checks:
    """Every page's problems, gathered, so that one run of the test lists them all."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fits(self, page: Any, where: str) -> None:
        width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if width > inner:
            wide = page.evaluate(WIDEST)
            self.problems.append(f"{where}: the page scrolls sideways ({width} px > {inner} px): {wide}")

    def table_fits(self, page: Any, where: str) -> None:
        """The exports list needs no scrolling of its own at desktop widths: Run, Dry run, View show."""
        box = page.get_by_test_id("exports").locator("xpath=..")
        width, inner = box.evaluate("(node) => [node.scrollWidth, node.clientWidth]")
        if width > inner:
            self.problems.append(f"{where}: the exports list is wider than its box ({width} px > {inner} px)")

    def accessible(self, page: Any, where: str) -> None:
        for v in AXE.run(page).response["violations"]:
            kind = "" if v["impact"] in BLOCKING else " (minor: fix it or explain it in docs)"
            targets = ", ".join(" ".join(n["target"]) for n in v["nodes"][:4])
            self.problems.append(f"{where}: axe {v['id']} ({v['impact']}){kind}: {v['help']} — {targets}")

    def page(self, page: Any, where: str) -> None:
        self.fits(page, where)
        self.accessible(page, where)


def test_keyboard_journey_then_every_page_accessible_without_sideways_scroll(
    page_for: Any, live: Live, browser: Any
) -> None:
    page = page_for()
    ids = _by_keyboard(page, live)
    _history(live, ids["export"])
    checks = Checks()
    page.set_viewport_size(DESKTOP)

    shots = {f"/exports/{ids['export']}": "export", "/system/status": "status", f"/runs/{ids['run']}": "run-detail",
             "/exports": "exports", "/segments": "segments", f"/exports/{ids['export']}/edit": "export-form"}  # fmt: skip
    for size, viewport in (("1366 px", DESKTOP), ("390 px", PHONE)):
        page.set_viewport_size(viewport)
        # axe's rules do not depend on the width: it runs at desktop size, the width check at both.
        check = checks.page if viewport is DESKTOP else checks.fits
        for path in _pages(ids):
            page.goto(path)
            check(page, f"{path} at {size}")
            if path == "/exports" and viewport is DESKTOP:
                checks.table_fits(page, f"{path} at {size}")
            if path == "/exports" and viewport is PHONE:  # the menu is one row, not 320 px of links
                menu = page.locator("nav.side").bounding_box()
                if menu["height"] > 64:
                    checks.problems.append(f"{path} at {size}: the menu is {menu['height']:.0f} px high")
            for canvas in page.locator("canvas[data-chart]").all():
                expect(canvas).to_have_attribute("data-drawn", "true")
            if path in shots and (viewport is PHONE or shots[path] in ("export", "status")):
                screenshot(page, shots[path] + ("-phone" if viewport is PHONE else ""))
        # States: a chart's numbers opened, the wizard's first steps.
        page.goto(f"/exports/{ids['export']}")
        page.get_by_test_id("chart-runs").locator("summary").click()
        check(page, f"export page, chart data open, at {size}")
        page.goto("/connections/new")
        wizard = page.get_by_test_id("connection-wizard")
        wizard.locator("input[name=type][value=campaign_monitor]").check()
        page.fill("#f-name", "Phone check")
        wizard.locator("input[name=shared][value=contributors]").check()
        wizard.get_by_label("I agree").check()
        wizard.get_by_role("button", name="Connect", exact=True).click()
        expect(wizard.locator("[data-step='6']")).to_contain_text("Authenticate with Campaign Monitor")
        check(page, f"connection wizard, step 6, at {size}")
        if viewport is PHONE:
            screenshot(page, "connection-wizard-phone")

    anonymous = browser.new_context(base_url=live.url, viewport=PHONE)
    try:
        sign_in_page = anonymous.new_page()
        sign_in_page.goto("/sign-in")
        sign_in_page.fill("#f-email", ADMIN)
        sign_in_page.fill("#f-password", "wrong password")
        sign_in_page.click("button[type=submit].primary")
        expect(sign_in_page.get_by_test_id("form-error")).to_be_visible()
        checks.page(sign_in_page, "/sign-in, wrong password, at 390 px")
        screenshot(sign_in_page, "sign-in-phone")
    finally:
        anonymous.close()

    polish = page_for(ADMIN, locale="pl-PL")
    polish.set_viewport_size(DESKTOP)
    for path in _pages(ids):
        polish.goto(path)
        checks.fits(polish, f"{path} in Polish at 1366 px")
        if path == "/exports":
            checks.table_fits(polish, f"{path} in Polish at 1366 px")
    polish.goto(f"/exports/{ids['export']}")
    expect(polish.get_by_test_id("chart-runs")).to_contain_text("Wysłane wiersze")
    assert not checks.problems, "\n".join(checks.problems)
