"""The UI's languages: gettext catalogs (Babel) loaded from the ``.po`` files at start-up.

The ``.po`` files in ``web/locale/<lang>/LC_MESSAGES/messages.po`` are the only form kept in the
repository: :func:`translations` compiles each one in memory the first time it is needed (no
``.mo`` files to build or to forget). English is the source language and needs no catalog.

Messages are marked with ``_("…")`` in templates and with ``_``/``N_`` in Python. To add new
messages to the catalogs after changing the UI, run ``python -m segmentsync.web.i18n`` (new
messages get an empty translation; the test suite fails until every language has one).

Two catalogs per language: ``messages.po`` (the pages' own words) and ``errors.po`` (the
services' messages: every template given to an error class of ``segmentsync.errors`` or marked
with ``segmentsync.errors.N_`` outside the web package, in the modules whose messages can reach a
page, see :data:`ERROR_METHODS`). Both are loaded as one translation.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from gettext import NullTranslations
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.support import Translations

from segmentsync.auth.service import LANGUAGES

WEB_DIR = Path(__file__).parent
LOCALE_DIR = WEB_DIR / "locale"
SOURCE_LANGUAGE = "en"
# Each language named in itself, for the language switch.
LANGUAGE_NAMES = {"en": "English", "pl": "Polski", "lv": "Latviešu", "ro": "Română", "fi": "Suomi"}
KEYWORDS = {"_": None, "gettext": None, "N_": None}
EXTRACT_METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
CATALOGS = ("messages", "errors")
TRANSLATED = tuple(lang for lang in LANGUAGES if lang != SOURCE_LANGUAGE)
PACKAGE_DIR = WEB_DIR.parent
ERROR_CLASSES = ("Invalid", "NotFound", "Conflict", "Forbidden", "Unauthenticated", "ConfigError",
                 "Retriable", "QuotaExceeded", "Fatal", "SegmentSyncError")  # fmt: skip
ERROR_KEYWORDS: dict[str, None] = dict.fromkeys(ERROR_CLASSES)
# The services' modules whose messages can reach a page. Left out, in English only: the API's
# own checks (the API speaks English), configuration as code, the command line, profile loading
# (a command), the emulators; the web package's pages are extracted separately (its errors below).
ERROR_METHODS = [
    *((pattern, "ignore") for pattern in ("web/**", "sandbox/**", "api/**", "config/**", "migrations/**",
                                          "**/cli.py", "**/runs_cli.py", "cli_main.py", "terminal.py",
                                          "quickstart.py", "profiles/load.py", "profiles/readers.py",
                                          "profiles/generate.py", "exports/idempotency.py")),
    ("**.py", "python"),
]  # fmt: skip


def N_(message: str) -> str:  # the gettext convention: mark now, translate where shown
    """Mark a message for extraction without translating it (translated where it is shown)."""
    return message


def catalog_path(lang: str, name: str = "messages") -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{name}.po"


def read_catalog(lang: str, name: str = "messages") -> Catalog:
    with catalog_path(lang, name).open("rb") as handle:
        return read_po(handle, locale=lang)


def _compiled(lang: str, name: str) -> Translations:
    buffer = BytesIO()
    write_mo(buffer, read_catalog(lang, name), use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain="messages")


@cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalogs of a language, as one (English: the messages themselves)."""
    if lang == SOURCE_LANGUAGE:
        return NullTranslations()
    merged = _compiled(lang, "messages")
    merged.merge(_compiled(lang, "errors"))
    return merged


def load_all() -> None:
    """Compile every catalog now, so that a broken ``.po`` file stops the start-up."""
    for lang in LANGUAGES:
        translations(lang)


def negotiate(accept_language: str | None) -> str:
    """The first of our languages the browser's ``Accept-Language`` asks for (by weight)."""
    wanted: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        primary = tag.strip().split("-")[0].lower()
        if primary in LANGUAGES and weight > 0:
            wanted.append((-weight, index, primary))
    return sorted(wanted)[0][2] if wanted else SOURCE_LANGUAGE


@dataclass(frozen=True)
class Translator:
    """Translates into one language; ``%(name)s`` placeholders are filled from keywords."""

    lang: str

    def gettext(self, message: str, **values: object) -> str:
        text = translations(self.lang).gettext(message)
        return text % values if values else text

    __call__ = gettext


# ---------------------------------------------------------------- maintaining the catalogs


def _add_all(
    catalog: Catalog, found: Iterable[tuple[str, int, Any, list[str], str | None]], prefix: str = ""
) -> None:
    for filename, lineno, message, comments, context in found:
        catalog.add(message, None, [(prefix + filename, lineno)], auto_comments=comments, context=context)


def extract() -> Catalog:
    """Every message marked in the templates and the Python code of the web UI."""
    catalog = Catalog(project="segmentsync", locale=None)
    _add_all(catalog, extract_from_dir(WEB_DIR, EXTRACT_METHODS, keywords=KEYWORDS, strip_comment_tags=True))
    return catalog


def extract_errors() -> Catalog:
    """Every service message that can reach a page: the error classes' templates and ``N_``."""
    catalog = Catalog(project="segmentsync", locale=None)
    keywords = {**ERROR_KEYWORDS, "N_": None}
    _add_all(
        catalog, extract_from_dir(PACKAGE_DIR, ERROR_METHODS, keywords=keywords, strip_comment_tags=True)
    )
    web = extract_from_dir(WEB_DIR, [("**.py", "python")], keywords=ERROR_KEYWORDS, strip_comment_tags=True)
    _add_all(catalog, web, prefix="web/")
    return catalog


def update_catalogs() -> dict[str, int]:
    """Add new messages to every language's catalogs (untranslated) and drop unused ones."""
    templates = {"messages": extract(), "errors": extract_errors()}
    missing: dict[str, int] = {}
    for lang in LANGUAGES:
        if lang == SOURCE_LANGUAGE:
            continue
        missing[lang] = 0
        for name, template in templates.items():
            path = catalog_path(lang, name)
            exists = path.exists()
            catalog = read_catalog(lang, name) if exists else Catalog(locale=lang, project="segmentsync")
            catalog.update(template, no_fuzzy_matching=True)
            catalog.obsolete.clear()
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as handle:
                write_po(handle, catalog, width=100, omit_header=False, sort_output=False)
            missing[lang] += sum(1 for message in catalog if message.id and not message.string)
    return missing


if __name__ == "__main__":
    for language, count in update_catalogs().items():
        sys.stdout.write(f"{language}: {count} untranslated\n")
