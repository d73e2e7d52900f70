"""The connection wizard as a new admin meets it (Chromium): Deny at the platform keeps what was
typed and lands on step 6; nothing is made before Save (Cancel leaves nothing behind); the
account is named once; no "Add yourself" offered to the export user. And the OAuth route with the
keyboard only (the API-key route is in test_layout), axe-core finding nothing on each of its states."""

from __future__ import annotations

import re
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from .conftest import ADMIN, PASSWORD, Live
from .keyboard import tab_to, type_into

pytestmark = pytest.mark.browser
AXE = Axe()


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


def _accessible(page: Any, where: str, problems: list[str]) -> None:
    for v in AXE.run(page).response["violations"]:
        targets = ", ".join(" ".join(n["target"]) for n in v["nodes"][:4])
        problems.append(f"{where}: axe {v['id']} ({v['impact']}): {v['help']} — {targets}")


def _at_the_platform(page: Any) -> None:
    """On step 6, the focus is on "Authenticate with Constant Contact": Enter goes to the platform."""
    expect(page.get_by_test_id("authenticate")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("button[name=decision][value=approve]")).to_be_visible()


def test_oauth_route_with_the_keyboard_only(page_for: Any, live: Live) -> None:
    """Sign in, pick Constant Contact, name it, share it, agree, Connect, go to the platform, Deny
    (everything typed is kept, the focus back on Authenticate), go again, Approve, come back to the
    held result (the account by its organization's name), add yourself, Save: no click, no fill."""
    problems: list[str] = []
    page = page_for()
    page.goto("/sign-in")
    type_into(page, "#f-email", ADMIN)
    type_into(page, "#f-password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/exports")

    page.goto("/connections/new")
    wizard = page.get_by_test_id("connection-wizard")
    _accessible(page, "the wizard, empty", problems)
    tab_to(page, "input[name=type]")  # the group's first radio: Campaign Monitor
    page.keyboard.press("ArrowDown")  # → Constant Contact, checked
    expect(wizard.locator("input[name=type][value=constant_contact]")).to_be_checked()
    type_into(page, "#f-name", "Shop events")
    tab_to(page, "input[name=shared]")  # the group's checked radio: Administrators
    page.keyboard.press("ArrowDown")  # → Administrators and contributors
    tab_to(page, "input[name=consent]")
    page.keyboard.press("Space")
    tab_to(page, "button[value=connect]")
    page.keyboard.press("Enter")
    expect(wizard.locator("[data-step='6']")).to_contain_text("Authenticate with Constant Contact")
    _accessible(page, "step 6, before the platform", problems)

    _at_the_platform(page)
    tab_to(page, "button[name=decision][value=deny]")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/connections/new\?resume=1#step-6$"))
    expect(page.locator(".notice-error")).to_contain_text("The platform did not authorize the connection.")
    expect(page.locator("#f-name")).to_have_value("Shop events")
    expect(wizard.locator("input[name=type][value=constant_contact]")).to_be_checked()
    expect(wizard.locator("input[name=shared][value=contributors]")).to_be_checked()
    expect(wizard.locator("input[name=consent]")).to_be_checked()
    _accessible(page, "step 6, after Deny", problems)

    _at_the_platform(page)
    tab_to(page, "button[name=decision][value=approve]")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/connections/new\?pending=[^#]+#step-7$"))
    expect(page.get_by_test_id("authenticated")).to_have_text(
        "✓ Authenticated with Constant Contact as Acme CC."  # the organization's name, not its UUID
    )
    add_me = wizard.locator("input[name=add_me]")
    expect(add_me).to_be_focused()  # the next thing to do, not the top of the page
    _accessible(page, "step 7, the held OAuth result", problems)
    page.keyboard.press("Space")
    expect(add_me).to_be_checked()
    tab_to(page, "[data-testid=finish]")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("connections")).to_contain_text("Shop events")
    _accessible(page, "the connections list after Save", problems)
    [made] = page.request.get("/api/v1/connections").json()["items"]
    assert made["type"] == "constant_contact", made
    assert made["shared_with_contributors"] is True, made
    assert made["settings"]["auth_method"] == "oauth", made
    assert made["settings"]["account_name"] == "Acme CC", made
    assert made["export_user"]["email"] == ADMIN, made
    assert not problems, "\n".join(problems)
