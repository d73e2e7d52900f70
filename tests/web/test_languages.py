"""The UI in the user's language: the browser's Accept-Language, or the user's own setting.

The connection wizard uses the original product's Polish terms (``seeds/``): *Dodaj połączenie*,
*Wyświetlana nazwa*, *Zgadzam się*, *Połącz*, *Uwierzytelnij z usługą Campaign Monitor*, *Dodaj
siebie jako eksportowanie użytkowników*, *Zapisz*.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import ADMIN, Live, screenshot

pytestmark = pytest.mark.browser


def test_polish_browser_gets_the_polish_connection_wizard(page_for: Any, live: Live) -> None:
    page = page_for(ADMIN, locale="pl-PL")
    expect(page.locator("html")).to_have_attribute("lang", "pl")
    page.goto("/connections")
    expect(page.get_by_test_id("add-connection")).to_have_text("Dodaj połączenie")
    page.get_by_test_id("add-connection").click()
    expect(page.locator("h1")).to_have_text("Dodaj połączenie")
    wizard = page.get_by_test_id("connection-wizard")
    expect(wizard).to_contain_text("Wyświetlana nazwa")
    expect(wizard).to_contain_text("Kto może używać tego połączenia")
    expect(wizard).to_contain_text("Prywatność danych i zgodność z przepisami")
    expect(wizard.get_by_label("Zgadzam się")).to_be_visible()

    wizard.locator("input[name=type][value=campaign_monitor]").check()
    page.fill("#f-name", "Newsletter PL")
    wizard.get_by_role("button", name="Połącz", exact=True).click()  # no consent: refused, said why
    expect(page.locator("#err-consent")).to_contain_text("Zgadzam się")
    expect(wizard.get_by_label("Zgadzam się")).to_be_focused()  # the first problem, not step 6
    expect(page.locator("#f-name")).to_have_value("Newsletter PL")  # the input is kept
    wizard.get_by_label("Zgadzam się").check()
    wizard.get_by_role("button", name="Połącz", exact=True).click()
    expect(page.get_by_test_id("authenticate")).to_have_text("Uwierzytelnij z usługą Campaign Monitor")
    expect(wizard.locator("[data-step='7']")).to_contain_text("Dodaj siebie jako eksportowanie użytkowników")
    expect(wizard.locator("[data-step='8'] button")).to_have_text("Zapisz")
    screenshot(page, "connection-wizard-pl")


def test_the_header_switch_sets_the_users_language(page_for: Any, live: Live) -> None:
    page = page_for(ADMIN)
    expect(page.locator("nav.side")).to_contain_text("Exports")
    for code, word in (("fi", "Viennit"), ("lv", "Eksportēšana"), ("ro", "Exporturi"), ("pl", "Eksporty")):
        page.select_option("#language-switch", code)
        expect(page.locator("html")).to_have_attribute("lang", code)
        expect(page.locator("nav.side")).to_contain_text(word)
    fresh = page_for(ADMIN, locale="en-US")  # the setting is the user's, not the browser's
    expect(fresh.locator("html")).to_have_attribute("lang", "pl")
