"""The SQL tab's editor in Chromium: highlighted as typed, checked as typed (the refusal said with
its line, underlined and marked, then gone once fixed), accessible (axe-core: no violation), left
with Esc then Tab, and the form still sends what was typed — with JavaScript and without."""

from __future__ import annotations

import re
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from segmentsync.db import transaction
from segmentsync.errors import Invalid
from segmentsync.segments import kinds
from segmentsync.segments import sql as sqlcheck

from .conftest import CONTRIBUTOR, Live, screenshot, sign_in

pytestmark = pytest.mark.browser

GOOD_LINES = ["SELECT profile_id", "FROM profiles", "WHERE country = 'PL'"]
BAD_LINE = "JOIN read_csv('x.csv') AS x ON true"


def refusal(text: str) -> Invalid:
    """What the server's check says of ``text`` (the test's own call of the same check)."""
    with pytest.raises(Invalid) as raised:
        sqlcheck.check(text, "duckdb")
    return raised.value


def test_highlighted_and_checked_as_typed_and_plain_without_javascript(
    page_for: Any, live: Live, browser: Any
) -> None:
    page = page_for(CONTRIBUTOR)
    page.goto("/segments/new")
    page.get_by_test_id("tab-sql").click()
    editor = page.get_by_test_id("sql-editor")  # CodeMirror's content, in place of the textarea
    expect(editor).to_be_visible()
    expect(page.locator("#f-sql")).to_be_hidden()
    expect(page.locator("#sql-keys")).to_be_visible()

    # CodeMirror's themes come from the static stylesheet (the CSP refuses the <style> element it
    # would make): every rule it made is there. Without them typed spaces become U+00A0.
    made = page.evaluate("SegmentsyncCodeMirror.styleModules.map((m) => m.getRules())")
    served = page.request.get(page.locator("link[href*='codemirror-sql.css']").get_attribute("href")).text()
    assert made
    assert all(rules in served for rules in made)

    editor.click()
    page.keyboard.type("\n".join(GOOD_LINES))
    assert page.locator("#f-sql").input_value() == "\n".join(GOOD_LINES)
    expect(editor.locator(".tok-keyword", has_text=re.compile("^SELECT$"))).to_have_count(1)
    expect(editor.locator(".tok-keyword", has_text=re.compile("^WHERE$"))).to_have_count(1)
    expect(editor.locator(".tok-string")).to_have_text("'PL'")
    expect(editor.locator(".tok-keyword").first).to_have_css("color", "rgb(31, 79, 153)")  # app.css
    status = page.get_by_test_id("sql-status")
    expect(status).to_have_text("The query passes the check: one SELECT that only reads.")
    expect(status).to_have_attribute("role", "status")

    page.keyboard.press("Enter")
    page.keyboard.type(BAD_LINE)
    typed = page.locator("#f-sql").input_value()  # the textarea the form sends follows the editor
    assert typed.splitlines()[-1].strip() == BAD_LINE
    expected = refusal(typed)
    line, column = expected.details["line"], expected.details["column"]
    assert line == 4
    expect(status).to_have_text(re.compile(rf"^Line 4, column {column}: the table function read_csv\(\)"))
    expect(page.locator(".cm-lintRange-error")).to_have_text("read_csv")
    expect(page.locator(".cm-lint-marker-error")).to_have_count(1)

    screenshot(page, "segment-sql-editor")
    violations = Axe().run(page).response["violations"]
    assert violations == [], [(v["id"], v["help"], [n["target"] for n in v["nodes"][:3]]) for v in violations]

    # Fixed: the last line goes, and with it the mark and the message.
    page.keyboard.press("Shift+Home")
    page.keyboard.press("Shift+Home")  # past the indentation too
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    expect(status).to_have_text("The query passes the check: one SELECT that only reads.")
    expect(page.locator(".cm-lintRange-error")).to_have_count(0)
    expect(page.locator(".cm-lint-marker-error")).to_have_count(0)

    # Tab indents inside the editor; Esc, then Tab, moves on.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('.cm-editor') !== null")
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('.cm-editor') === null")

    page.fill("#f-name", "Poland by SQL")
    page.get_by_test_id("save-segment").click()
    page.wait_for_url(re.compile(r"/segments/\d+$"))
    assert page.locator("#f-sql").input_value().split() == " ".join(GOOD_LINES).split()
    expect(page.get_by_test_id("member-count")).not_to_have_text("0")

    # Restricted to admins: the contributor reads the query, highlighted, and cannot change it.
    with transaction(live.runtime.sessions) as session:
        kinds.options(session).sql_admins_only = True
    page.reload()
    expect(editor).to_have_attribute("contenteditable", "false")
    expect(editor.locator(".tok-keyword").first).to_have_text("SELECT")
    expect(page.get_by_test_id("sql-not-allowed")).to_be_visible()
    expect(page.locator("#sql-keys")).to_be_hidden()
    with transaction(live.runtime.sessions) as session:
        kinds.options(session).sql_admins_only = False

    # Without JavaScript: the text area is the editor, and it saves the query.
    context = browser.new_context(base_url=live.url, java_script_enabled=False)
    try:
        context.set_default_timeout(15_000)
        plain = context.new_page()
        sign_in(plain, CONTRIBUTOR)
        plain.goto("/segments/new")
        plain.get_by_test_id("tab-sql").click()
        expect(plain.locator("#f-sql")).to_be_visible()
        expect(plain.locator(".cm-editor")).to_have_count(0)
        plain.fill("#f-name", "Poland, typed plainly")
        plain.fill("#f-sql", "\n".join(GOOD_LINES))
        plain.get_by_test_id("save-segment").click()
        plain.wait_for_url(re.compile(r"/segments/\d+$"))
        assert plain.locator("#f-sql").input_value() == "\n".join(GOOD_LINES)
    finally:
        context.close()
