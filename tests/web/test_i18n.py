"""Every UI message has a translation in every language; the language is negotiated sensibly."""

from __future__ import annotations

import re

import pytest

from segmentsync.auth.service import LANGUAGES
from segmentsync.web import i18n

PLACEHOLDER = re.compile(r"%\(\w+\)s")
TRANSLATED = [lang for lang in LANGUAGES if lang != i18n.SOURCE_LANGUAGE]


@pytest.fixture(scope="module")
def messages() -> list[str]:
    return [message.id for message in i18n.extract() if message.id]


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_of_the_ui_is_translated(lang: str, messages: list[str]) -> None:
    catalog = i18n.read_catalog(lang)
    untranslated = [m for m in messages if catalog.get(m) is None or not catalog.get(m).string]
    assert not untranslated, f"{lang}: no translation for {untranslated} (run python -m segmentsync.web.i18n)"
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not fuzzy, f"{lang}: fuzzy translations are not used: {fuzzy}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_translations_keep_their_placeholders_and_nothing_is_stale(lang: str, messages: list[str]) -> None:
    catalog = i18n.read_catalog(lang)
    for message in catalog:
        if not message.id:
            continue
        assert message.id in messages, (
            f"{lang}: {message.id!r} is no longer used (run python -m segmentsync.web.i18n)"
        )
        assert sorted(PLACEHOLDER.findall(message.string)) == sorted(PLACEHOLDER.findall(message.id)), (
            message.id
        )


def test_the_original_products_terms_are_used() -> None:
    """The seed documents' UI terms for the connection wizard, per language."""
    terms = {
        "pl": {"Add connection": "Dodaj połączenie", "Display name": "Wyświetlana nazwa", "I agree": "Zgadzam się",
               "Connect": "Połącz", "Authenticate with Campaign Monitor": "Uwierzytelnij z usługą Campaign Monitor",
               "Add yourself as export user": "Dodaj siebie jako eksportowanie użytkowników", "Save": "Zapisz",
               "Add destination": "Dodaj miejsce docelowe", "Data matching": "Dopasowywanie danych"},
        "lv": {"Add connection": "Pievienot savienojumu", "Display name": "Parādāmais nosaukums", "I agree": "Piekrītu",
               "Connect": "Savienot", "Add yourself as export user": "Pievienot sevi kā eksporta lietotāju",
               "Save": "Saglabāt"},
        "ro": {"Add connection": "Adăugați conexiune", "Display name": "Nume afișat", "I agree": "Sunt de acord",
               "Connect": "Conectați", "Add yourself as export user": "Adăugați-vă ca utilizator de export",
               "Save": "Salvare"},
        "fi": {"Add connection": "Lisää yhteys", "Display name": "Näyttönimi", "Connect": "Yhdistä",
               "Authenticate with Campaign Monitor": "Todenna Campaign Monitorin avulla",
               "Add yourself as export user": "Lisää itsesi vientikäyttäjäksi", "Save": "Tallenna"},
    }  # fmt: skip
    for lang, expected in terms.items():
        translator = i18n.Translator(lang)
        assert {source: translator(source) for source in expected} == expected


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "en"),
        ("", "en"),
        ("pl-PL,pl;q=0.9,en;q=0.8", "pl"),
        ("de-DE,de;q=0.9,fi;q=0.5", "fi"),
        ("en;q=0.2, ro;q=0.9", "ro"),
        ("lv", "lv"),
        ("fr-FR, *;q=0.1", "en"),
        ("pl;q=0, lv;q=0.4", "lv"),
        ("pl;q=abc", "en"),
    ],
)
def test_accept_language_picks_the_best_of_our_languages(header: str | None, lang: str) -> None:
    assert i18n.negotiate(header) == lang


def test_placeholders_are_filled_in_the_language_of_the_page() -> None:
    assert (
        i18n.Translator("pl")("Remove the connection %(name)s?", name="Sklep") == "Usunąć połączenie Sklep?"
    )
    assert i18n.Translator("en")("Run #%(id)s", id=7) == "Run #7"
