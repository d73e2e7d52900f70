"""The connection wizard as a new admin meets it (Chromium): Deny at the platform keeps what was
typed and lands on step 6; nothing is made before Save (Cancel leaves nothing behind); the
account is named once; no "Add yourself" offered to the export user."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import ADMIN, Live

pytestmark = pytest.mark.browser


def _to_the_platform(page: Any) -> None:
    page.get_by_test_id("authenticate").click()
    expect(page.locator("button[name=decision][value=deny]")).to_be_visible()


def test_deny_keeps_what_was_typed_and_nothing_is_made_before_save(page_for: Any, live: Live) -> None:
    page = page_for(ADMIN)
    page.goto("/connections/new")
    wizard = page.get_by_test_id("connection-wizard")
    wizard.locator("input[name=type][value=constant_contact]").check()
    page.fill("#f-name", "Shop CC")
    wizard.locator("input[name=shared][value=contributors]").check()
    wizard.get_by_label("I agree").check()
    wizard.get_by_role("button", name="Connect", exact=True).click()
    _to_the_platform(page)
    page.click("button[name=decision][value=deny]")

    expect(page).to_have_url(re.compile(r"/connections/new\?resume=1#step-6$"))
    expect(page.locator(".notice-error")).to_contain_text("The platform did not authorize the connection.")
    expect(page.locator("#f-name")).to_have_value("Shop CC")  # everything as it was typed
    expect(wizard.locator("input[name=shared][value=contributors]")).to_be_checked()
    expect(wizard.get_by_label("I agree")).to_be_checked()
    expect(page.get_by_test_id("authenticate")).to_be_focused()

    _to_the_platform(page)
    page.click("button[name=decision][value=approve]")
    # the account by its organization's name (from /account/summary), not its UUID
    expect(page.get_by_test_id("authenticated")).to_contain_text(
        "Authenticated with Constant Contact as Acme CC."
    )
    assert not page.request.get("/api/v1/connections").json()["items"]  # nothing made before Save
    page.get_by_test_id("cancel-setup").click()
    expect(page.locator(".notice-ok")).to_contain_text("Nothing was saved.")
    assert not page.request.get("/api/v1/connections").json()["items"]

    page.goto("/connections/new")
    wizard.locator("input[name=type][value=constant_contact]").check()
    page.fill("#f-name", "Shop CC")
    wizard.get_by_label("I agree").check()
    wizard.get_by_role("button", name="Connect", exact=True).click()
    _to_the_platform(page)
    page.click("button[name=decision][value=approve]")
    wizard.get_by_label("Add yourself as export user").check()
    page.get_by_test_id("finish").click()
    page.get_by_test_id("connections").get_by_role("link", name="Shop CC").click()
    account = page.get_by_test_id("account").inner_text()
    assert account.startswith("Acme CC "), account
    assert len(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-", account)) <= 1, account  # the id at most once
    expect(page.get_by_test_id("you-are-export-user")).to_be_visible()
    expect(page.get_by_test_id("add-export-user")).to_have_count(0)
    expect(page.get_by_test_id("connection-status")).to_have_text("OK")
