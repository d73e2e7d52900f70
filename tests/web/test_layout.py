"""Every page, in one browser session: accessible (axe-core), no sideways scroll, charts drawn.

One admin visits every page and state of the UI (lists, forms, a finished run, the connection
wizard, errors) at 1366 × 900 in English, then again at 390 × 844 (a phone), and the widest lists
at 1366 px in Polish, whose words are the longest. On each:

* the page itself never scrolls sideways: ``document.documentElement.scrollWidth <= innerWidth``
  (wide tables scroll inside their own box);
* axe-core finds no violation of impact *serious* or *critical* (desktop and phone); the minor
  ones are reported in the assertion message if ever found, and none are today;
* the charts (Chart.js, vendored) are drawn on the export, run and Status pages.

Screenshots (desktop and phone) go to docs/screenshots when SEGMENTSYNC_SCREENSHOTS names it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from segmentsync.auth.models import Role, User
from segmentsync.connections import service as connections
from segmentsync.connections.models import ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionCreate
from segmentsync.db import transaction
from segmentsync.exports import service as exports
from segmentsync.exports.models import Export, Run, RunStatus, Trigger
from segmentsync.exports.schemas import ExportCreate
from segmentsync.segments import service as segments
from segmentsync.segments.rules import Group
from segmentsync.segments.schemas import SegmentCreate

from .conftest import ADMIN, Live, screenshot

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
HISTORY = [
    (9, RunStatus.SUCCEEDED, 30, 0, 0, 0, 0, 12),
    (7, RunStatus.SUCCEEDED_WITH_REJECTIONS, 4, 6, 20, 1, 2, 9),
    (5, RunStatus.FAILED, 0, 0, 0, 0, 0, 3),
    (3, RunStatus.SUCCEEDED, 6, 3, 25, 2, 0, 8),
    (1, RunStatus.SUCCEEDED_WITH_REJECTIONS, 2, 5, 28, 0, 1, 7),
]


def _setup(live: Live) -> dict[str, int]:
    """A connection, a segment, an export with a week of past runs; the ids of what pages show."""
    runtime = live.runtime
    now = runtime.clock()
    with transaction(runtime.sessions) as session:
        admin = session.query(User).filter_by(role=Role.ADMIN).one()
        session.expunge(admin)
        connection = connections.create(
            session=session, runtime=runtime, actor=admin,
            data=ConnectionCreate(
                type=ConnectionType.CAMPAIGN_MONITOR, name="Acme newsletter (Campaign Monitor, main account)",
                shared_with_contributors=True, consent=True,
                auth=ApiKeyAuth(api_key=live.cm_client["ApiKey"], client_id=live.cm_client["ClientID"]),
            ),
        )  # fmt: skip
        segment = segments.create(
            session=session, source=runtime.profiles, actor=admin,
            segment_in=SegmentCreate(
                name="Buyers in Poland with at least one order",
                rules=Group.model_validate({"items": [{"column": "orders", "operator": "ge", "value": 1}]}),
            ),
        )  # fmt: skip
        segments.refresh(session=session, source=runtime.profiles, segment_id=segment.id, actor=admin)
        ids = {"connection": connection.id, "segment": segment.id, "user": admin.id}
    list_id = live.cm_list("Newsletter subscribers who bought something in the last year")
    saved = exports.create(
        runtime=runtime, actor=admin,
        data=ExportCreate(name="Poland buyers to the Campaign Monitor newsletter", connection_id=ids["connection"],
                          list_id=list_id, email_column="email", segment_ids=[ids["segment"]]),
    )  # fmt: skip
    ids["export"] = saved.export_id
    with transaction(runtime.sessions) as session:
        export = session.get(Export, saved.export_id)
        assert export is not None
        for days, status, new, updated, unchanged, removed, rejected, seconds in HISTORY:
            started = now - timedelta(days=days, hours=2)
            session.add(
                Run(
                    export_id=export.id,
                    export_name=export.name,
                    trigger=Trigger.SCHEDULE,
                    status=status,
                    created_at=started,
                    started_at=started,
                    finished_at=started + timedelta(seconds=seconds),
                    profiles=new + updated + unchanged + rejected,
                    new=new,
                    updated=updated,
                    unchanged=unchanged,
                    removed=removed,
                    rejected=rejected,
                )
            )
        ids["run"] = exports.run(session=session, export=export, actor=admin).id
    return ids


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


def test_every_page_accessible_and_no_sideways_scroll(page_for: Any, live: Live, browser: Any) -> None:
    ids = _setup(live)
    checks = Checks()
    page = page_for(ADMIN)
    page.set_viewport_size(DESKTOP)
    page.goto(f"/runs/{ids['run']}")
    expect(page.get_by_test_id("run-status")).to_have_text(re.compile("^Succeeded"), timeout=60_000)
    expect(page.get_by_test_id("chart-outcomes").locator("canvas")).to_have_attribute("data-drawn", "true")

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
