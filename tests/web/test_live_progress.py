"""The run page follows a slow run live (Chromium): the bar moves with the platform's own progress.

A real run (the ``live`` fixture's worker thread, real HTTP to the emulators) is made slow by
the emulators' own control keys, never by a sleep of ours: Constant Contact processes the
import at ``activity_rows_per_second`` and its ``percent_done`` grows meanwhile
(``destinations/progress.py`` → ``engine/in_flight.py`` → ``/runs/{id}/live``). The page is
opened from the export's Run button; from its first paint a ``MutationObserver`` (an init script,
so it runs before the page's own script) writes down every value the bar, the phase and the
status show. The test then waits for the finished run and reads that record:

* the bar took at least two distinct values strictly between 0 and 100, never went back and
  never exceeded its ``aria-valuemax``; it ends at 100;
* the phase text changed while the page was open;
* the page shows the finished run — status, counts, the per-row outcomes, the outcome chart —
  without being reloaded (a marker the test sets on the window when the run page opens is still
  there at the end); the row search being typed into meanwhile keeps its focus and its text;
* axe-core finds no violation on the finished page.

Both platforms in one test (one server, one browser page), one run after the other. Campaign
Monitor answers each import at once, so its bar moves batch by batch: batches of 8 rows (the
operator's cap, ``max_batch_rows``) under the emulator's rate limit of one request a second.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from segmentsync.auth.models import Role, User
from segmentsync.connections import service as connections
from segmentsync.connections.models import ConnectionType
from segmentsync.connections.schemas import ApiKeyAuth, ConnectionCreate, TokenAuth
from segmentsync.db import transaction
from segmentsync.exports import service as exports
from segmentsync.exports.schemas import ExportCreate
from segmentsync.segments import service as segments
from segmentsync.segments.rules import Group
from segmentsync.segments.schemas import SegmentCreate

from .conftest import ADMIN, Live

pytestmark = pytest.mark.browser
AXE = Axe()

# Runs before the page's scripts (on every page load): a record of what the page shows.
WATCH = """
window.__seen = { percent: [], max: [], phase: [], status: [], shown: [] };
document.addEventListener("DOMContentLoaded", () => {
  const panel = document.getElementById("live");
  if (!panel) return;
  const note = () => {
    const bar = panel.querySelector("[data-live-progress]");
    const now = {
      percent: Number(bar.getAttribute("aria-valuenow")),
      max: Number(bar.getAttribute("aria-valuemax")),
      phase: panel.querySelector("[data-testid=run-phase]").textContent.trim(),
      status: panel.querySelector("[data-testid=run-status]").textContent.trim(),
    };
    now.shown = `${now.status} · ${now.phase}`;
    for (const [key, value] of Object.entries(now)) {
      const seen = window.__seen[key];
      if (seen[seen.length - 1] !== value) seen.push(value);
    }
  };
  note();
  new MutationObserver(note).observe(document.body, {
    subtree: true, childList: true, characterData: true, attributes: true,
  });
});
"""
FINISHED = re.compile(r"^Succeeded")


def _export(live: Live, connection: ConnectionCreate, list_id: str, name: str) -> int:
    """A connection, a segment of the fixture's 42 profiles and an export of it to ``list_id``; its id."""
    runtime = live.runtime
    with transaction(runtime.sessions) as session:
        admin = session.query(User).filter_by(role=Role.ADMIN).one()
        session.expunge(admin)
        made = connections.create(session=session, runtime=runtime, actor=admin, data=connection)
        connection_id = made.id
        segment = segments.create(
            session=session, source=runtime.profiles, actor=admin,
            segment_in=SegmentCreate(
                name=name, rules=Group.model_validate({"items": [{"column": "orders", "operator": "ge", "value": 0}]})
            ),
        )  # fmt: skip
        segments.refresh(session=session, source=runtime.profiles, segment_id=segment.id, actor=admin)
        segment_id = segment.id
    export = exports.create(
        runtime=runtime, actor=admin,
        data=ExportCreate(name=name, connection_id=connection_id, list_id=list_id,
                          email_column="email", segment_ids=[segment_id]),
    )  # fmt: skip
    return export.export_id


def _watch_a_run(page: Any, live: Live, export_id: int) -> dict[str, list[Any]]:
    """Press Run on the export's page; wait for the finished run on the run page; what it showed.

    The worker is stopped while the run page opens (the run waits, queued), then started: the
    page watches the whole run however slowly it opens on a loaded machine."""
    live.workers.stop()
    page.goto(f"/exports/{export_id}")
    page.get_by_test_id("run").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    page.evaluate("window.__sameDocument = true")  # a reload would lose it
    search = page.get_by_test_id("row-search")
    search.press_sequentially("customer0")  # while it runs (for seconds yet): the focus and the text stay
    live.workers.start()
    status = page.get_by_test_id("run-status")
    expect(status).to_have_text(FINISHED, timeout=60_000)
    expect(search).to_be_focused()
    expect(search).to_have_value("customer0")
    # The finished run's details arrive without a reload: the per-row outcomes are listed.
    expect(page.get_by_test_id("run-rows")).to_contain_text("customer01@example.com")
    expect(page.get_by_test_id("run-percent")).to_have_text("100.0")
    expect(page.get_by_test_id("run-counts").locator("[data-live-count=new]")).to_have_text("40")
    expect(page.get_by_test_id("chart-outcomes").locator("canvas")).to_have_attribute("data-drawn", "true")
    expect(page.locator("time[datetime][title]").first).to_be_attached()  # shown in the browser's zone
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    seen: dict[str, list[Any]] = page.evaluate("window.__seen")
    violations = AXE.run(page).response["violations"]
    assert not violations, [(v["id"], v["impact"], v["help"]) for v in violations]
    return seen


def _assert_moved(seen: dict[str, list[Any]], platform: str) -> None:
    percents = seen["percent"]
    between = [value for value in percents if 0 < value < 100]
    assert len(set(between)) >= 2, f"{platform}: the bar did not move between 0 and 100: {percents}"
    assert percents == sorted(percents), f"{platform}: the bar went back: {percents}"
    assert seen["max"] == [100], f"the bar's maximum changed: {seen['max']}"
    assert max(percents) <= 100, f"the bar went past its maximum: {percents}"
    assert percents[-1] == 100, f"the bar did not end full: {percents}"
    assert len(seen["phase"]) >= 2, f"the phase text never changed: {seen['phase']}"
    assert "Running · —" not in seen["shown"], f"a running run without its phase: {seen['shown']}"
    assert FINISHED.match(seen["status"][-1]), seen["status"]


def test_the_bar_follows_slow_runs_on_both_platforms_until_the_finished_run_shows(
    page_for: Any, live: Live
) -> None:
    page = page_for(ADMIN)
    page.add_init_script(WATCH)
    # Constant Contact: 41 rows at 7 rows a second, so the import is "processing" for about 5.9 s,
    # its percent_done growing; the destination polls it after 0.5, 1.25, 2.4, 4.1 and 6.6 s (then
    # it is completed) and reports each, stored at most once a second: about 8, 40 and 69 %, each
    # for 1.7 s or more while the page asks every second.
    account = live.cc_account
    connection = ConnectionCreate(
        type=ConnectionType.CONSTANT_CONTACT, name="Acme events", consent=True,
        auth=TokenAuth(access_token=account["access_token"], refresh_token=account["refresh_token"],
                       oauth_client_id=account["client_id"], oauth_client_secret=account["client_secret"]),
    )  # fmt: skip
    export_id = _export(live, connection, live.cc_list("Everyone"), "Everyone to Constant Contact")
    live.sandbox.cc_faults(activity_rows_per_second=7)
    _assert_moved(_watch_a_run(page, live, export_id), "Constant Contact")

    # Campaign Monitor answers each import at once: the bar moves batch by batch. Batches of 8
    # rows (the operator's cap, SEGMENTSYNC_MAX_BATCH_ROWS) make 6 of the 41; the emulator's rate
    # limit of one request a second (X-RateLimit headers, which the destination follows) sends
    # them one after another.
    connection = ConnectionCreate(
        type=ConnectionType.CAMPAIGN_MONITOR, name="Acme newsletter", consent=True,
        auth=ApiKeyAuth(api_key=live.cm_client["ApiKey"], client_id=live.cm_client["ClientID"]),
    )  # fmt: skip
    export_id = _export(live, connection, live.cm_list("Everyone"), "Everyone to Campaign Monitor")
    live.runtime.settings.max_batch_rows = 8
    live.sandbox.cm_faults(rate_limit=1, rate_limit_window_seconds=1)
    _assert_moved(_watch_a_run(page, live, export_id), "Campaign Monitor")
