"""The Jinja2 environment of the pages: locale-aware filters and cache-busted static URLs."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context

from segmentsync.web.i18n import Translator
from segmentsync.web.messages import capitalised, localise_text

WEB_DIR = Path(__file__).parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"


@cache
def static_url(name: str) -> str:
    """``/static/<name>?v=<content hash>``: browsers cache assets until they change."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]
    return f"/static/{name}?v={digest}"


@lru_cache(maxsize=64)
def locale_of(lang: str) -> Locale:
    """The page language's Babel locale, parsed once: Babel parses a language code on every call
    given one (half of what formatting a number or a moment costs; a list of 300 rows made 600)."""
    return Locale.parse(lang)


# Lists show the same counts and moments request after request (a segment's member count, an
# audit entry's time): each is formatted once per language and kept (Babel's formatting is most of
# what such a cell costs to render).
@lru_cache(maxsize=8192, typed=True)
def _formatted_number(value: float | int, lang: str) -> str:
    return str(format_decimal(value, locale=locale_of(lang)))


@lru_cache(maxsize=8192)
def _formatted_utc(value: datetime, style: str, lang: str) -> str:
    return str(format_datetime(value.astimezone(UTC), style, tzinfo=UTC, locale=locale_of(lang)))


@pass_context
def _number(context: Context, value: float | int | None) -> str:
    if value is None:
        return "—"
    return _formatted_number(value, context["lang"])


@pass_context
def _when(context: Context, value: datetime | None, style: str = "medium") -> str:
    """A moment in UTC, in the page's language (the browser turns it into local time)."""
    if value is None:
        return "—"
    return _formatted_utc(value, style, context["lang"])


@pass_context
def _when_in(context: Context, value: datetime | None, zone: str, style: str = "medium") -> str:
    """A moment in the time zone it was set in, labelled with it: ``Mar 2, 2026, 6:00:00 AM Europe/Warsaw``."""
    if value is None:
        return "—"
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz, zone = ZoneInfo("UTC"), "UTC"
    return (
        f"{format_datetime(value.astimezone(tz), style, tzinfo=tz, locale=locale_of(context['lang']))} {zone}"
    )


def format_duration(seconds: float | None, lang: str) -> str:
    """Under a minute in words ("12 s"), else h:mm:ss or m:ss."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{int(seconds * 1000)} ms"
    if seconds < 60:
        return str(
            format_timedelta(timedelta(seconds=seconds), threshold=2, locale=locale_of(lang), format="narrow")
        )
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"


@pass_context
def _duration(context: Context, seconds: float | None) -> str:
    return format_duration(seconds, context["lang"])


@pass_context
def _sentence(context: Context, text: str | None) -> str:
    """A service's stored message (a run's error, a refresh's) in the page's language, as a sentence."""
    return capitalised(localise_text(Translator(context["lang"]), str(text or "")))


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,  # a misspelt variable fails the test instead of showing nothing
    )
    env.filters.update(
        number=_number, when=_when, when_in=_when_in, duration=_duration, iso=_iso, sentence=_sentence
    )
    env.globals.update(static_url=static_url)
    return env


def render(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(context)
