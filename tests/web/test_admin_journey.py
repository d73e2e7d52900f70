"""An admin, from an empty database, through the original product's flows in a real browser.

Sign in → add a Campaign Monitor connection through the sandbox's OAuth page (the seed's wizard,
step by step) → add a Constant Contact connection → build a segment → add an export (list picked
from the platform) → run it → watch the progress reach the end → find the rejected row by email.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import ADMIN, REJECTED_EMAIL, Live, screenshot, sign_in

pytestmark = pytest.mark.browser


def add_connection_with_oauth(
    page: Any, *, kind: str, name: str, platform: str, choose: tuple[str, str]
) -> None:
    page.goto("/connections")
    page.get_by_test_id("add-connection").first.click()
    wizard = page.get_by_test_id("connection-wizard")
    wizard.locator(f"input[name=type][value={kind}]").check()  # 1 type
    page.fill("#f-name", name)  # 2 display name
    wizard.locator("input[name=shared][value=contributors]").check()  # 3 who can use it
    expect(page.get_by_test_id("consent-notice")).to_contain_text("compliance boundary")  # 4 the notice
    wizard.get_by_label("I agree").check()
    wizard.get_by_role("button", name="Connect", exact=True).click()  # 5 connect
    expect(wizard.locator("[data-step='6']")).to_contain_text(f"Authenticate with {platform}")
    assert page.url.endswith("#step-6")  # the page lands on the next step, not at the top
    expect(page.get_by_test_id("authenticate")).to_be_focused()
    screenshot(page, f"connection-wizard-{kind}")
    page.get_by_test_id("authenticate").click()  # 6 off to the platform's consent page
    page.select_option(f"select[name={choose[0]}]", choose[1])
    page.click("button[name=decision][value=approve]")
    finish = page.get_by_test_id("connection-wizard")  # back from the platform: 7 and 8
    expect(page.get_by_test_id("authenticated")).to_contain_text(f"Authenticated with {platform}")
    assert "#step-7" in page.url
    listed = page.request.get("/api/v1/connections").json()["items"]
    assert name not in [item["name"] for item in listed]  # nothing is made before Save
    finish.get_by_label("Add yourself as export user").check()
    page.get_by_test_id("finish").click()
    expect(page.get_by_test_id("connections")).to_contain_text(name)


def build_segment(page: Any) -> None:
    page.goto("/segments")
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    page.get_by_test_id("new-segment").first.click()
    page.fill("#f-name", "Poland buyers")
    builder = page.locator("#rule-builder")
    builder.locator(".rb-add-condition").first.click()
    condition = builder.locator(".rb-cond").first
    condition.locator("select.rb-column").select_option("country")
    condition.locator("select.rb-operator").select_option("eq")
    condition.locator(".rb-value").fill("PL")
    builder.locator(".rb-add-condition").first.click()
    second = builder.locator(".rb-cond").nth(1)
    second.locator("select.rb-column").select_option("orders")
    second.locator("select.rb-operator").select_option("ge")
    second.locator(".rb-value").fill("1")
    page.get_by_test_id("preview").click()
    expect(page.get_by_test_id("preview-result")).to_contain_text(REJECTED_EMAIL)
    page.get_by_test_id("save-segment").click()
    expect(page.get_by_test_id("member-count")).to_have_text(re.compile(r"^\d+$"))
    screenshot(page, "segment-builder")


def add_export(page: Any, list_name: str) -> None:
    page.goto("/exports")
    page.get_by_test_id("add-export").first.click()
    page.fill("#f-name", "Poland to Campaign Monitor")
    expect(page.locator("#f-consent_to_track")).to_be_hidden()  # a platform's fields: once it is picked
    page.select_option("#f-connection_id", label="Acme newsletter")
    expect(page.locator("#f-consent_to_track")).to_be_visible()
    expect(page.get_by_text("32 hexadecimal characters")).to_be_visible()  # the hint of this platform
    expect(page.get_by_text("A UUID, as in the list's address")).to_be_hidden()
    picker = page.locator("#list-picker")  # the lists the connection sees on the platform
    option = picker.locator("option", has_text=list_name)
    expect(option).to_have_count(1)
    expect(option).to_contain_text("members")  # Campaign Monitor's lists counted too
    picker.select_option(option.get_attribute("value"))
    page.select_option("#f-email_column", "email")
    attribute = page.locator("#attributes .attr").first
    attribute.locator("select").select_option("first_name")
    attribute.locator("input").fill("Name")
    page.get_by_test_id("segment-pick").get_by_text("Poland buyers").click()
    screenshot(page, "export-form")
    page.get_by_test_id("save-export").click()
    expect(page.locator(".notice-ok").first).to_contain_text("Saving never runs it")


def test_admin_from_empty_database_to_a_finished_run(page_for: Any, live: Live) -> None:
    page = page_for()
    page.goto("/exports")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2Fexports"))
    page.fill("#f-email", ADMIN)
    page.fill("#f-password", "wrong password")
    page.click("button[type=submit].primary")
    expect(page.get_by_test_id("form-error")).to_contain_text("Wrong email or password")
    screenshot(page, "sign-in")
    sign_in(page, ADMIN)
    expect(page.get_by_test_id("current-role")).to_have_text("Administrator")
    expect(page.get_by_test_id("empty-state")).to_contain_text("No exports yet")

    page.goto("/connections")
    expect(page.get_by_test_id("empty-state")).to_contain_text("No connections yet")
    add_connection_with_oauth(
        page, kind="campaign_monitor", name="Acme newsletter", platform="Campaign Monitor",
        choose=("client_id", live.cm_client["ClientID"]),
    )  # fmt: skip
    add_connection_with_oauth(
        page, kind="constant_contact", name="Acme events", platform="Constant Contact",
        choose=("account_id", live.cc_account["account_id"]),
    )  # fmt: skip
    rows = page.get_by_test_id("connections")
    expect(rows).to_contain_text("Campaign Monitor")
    expect(rows).to_contain_text("Constant Contact")
    expect(rows).to_contain_text("Ada Admin")
    screenshot(page, "connections")

    build_segment(page)
    list_id = live.cm_list("Newsletter (Poland)")
    add_export(page, "Newsletter")
    assert list_id in page.content()
    page.get_by_test_id("run").click()

    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    live_panel = page.get_by_test_id("run-live")
    expect(page.get_by_test_id("run-status")).to_have_text("Succeeded with rejections", timeout=60_000)
    expect(page.get_by_test_id("run-percent")).to_have_text("100.0")
    expect(live_panel.locator("[data-live-count=rejected]")).to_have_text("1")
    expect(live_panel.locator("[data-live-count=invalid]")).to_have_text("1")
    screenshot(page, "run-detail")

    page.get_by_test_id("row-search").fill("jürgen")
    page.get_by_role("button", name="Search").click()
    rows = page.get_by_test_id("run-rows")
    expect(rows.locator("tbody tr")).to_have_count(1)
    expect(rows).to_contain_text(REJECTED_EMAIL)
    expect(rows).to_contain_text("Rejected")
    expect(rows).to_contain_text("Invalid Email Address")  # the platform's own message
    with page.expect_download() as download:
        page.get_by_test_id("download-csv").click()
    text = download.value.path().read_text(encoding="utf-8")
    assert REJECTED_EMAIL in text
    assert ",rejected," in text

    page.goto("/exports")
    expect(page.get_by_test_id("exports")).to_contain_text("Poland to Campaign Monitor")
    screenshot(page, "exports")
    for path, name, heading in (
        ("/segments", "segments", "Segments"),
        ("/system/status", "status", "Status"),
        ("/system/schedule", "schedule", "Schedule"),
        ("/users", "users", "Users"),
        ("/audit", "audit-log", "Audit log"),
    ):
        page.goto(path)
        expect(page.locator("h1")).to_have_text(heading)
        if name != "status":  # taken with a month of runs charted by test_layout
            screenshot(page, name)
    expect(page.get_by_test_id("audit")).to_contain_text("Connection · Created")
