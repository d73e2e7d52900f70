"""Input errors as sentences: the validator's findings in the reader's words, naming the field.

Pydantic says ``name: String should have at least 1 character``; a person wants *Display name
cannot be empty.* in their own language, beside the field. :func:`sentence` turns one pydantic
error (its ``type``, ``ctx`` and ``loc``) into such a sentence; the pages translate it, the API
(:mod:`segmentsync.api.errors`) uses the English one beside the machine-readable ``loc``.

A rule's errors (``rules.items.1.items.2``) name the condition by its place in the rule
(*Group 2 › condition 3*) instead of its path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from pydantic import ValidationError

from segmentsync.errors import SegmentSyncError
from segmentsync.web import i18n
from segmentsync.web.i18n import N_, Translator
from segmentsync.web.labels import LABELS

# How the forms label their fields (a form may name one differently: it passes its own labels).
FIELD_LABELS: dict[str, str] = {
    "name": N_("Name"),
    "type": N_("Type"),
    "description": N_("Description"),
    "rules": N_("Rule"),
    "api_key": N_("API key"),
    "client_id": N_("Client ID"),
    "shared": N_("Who can use this connection"),
    "consent": N_("I agree"),
    "connection_id": N_("Connection for export"),
    "list_id": N_("List ID"),
    "email_column": N_("Email"),
    "attributes": N_("Attributes"),
    "consent_to_track": N_("Consent to track"),
    "consent_column": N_("Consent column"),
    "segment_ids": N_("Segments"),
    "sync_mode": N_("Sync mode"),
    "removal_mode": N_("Members who left"),
    "schedule_mode": N_("Schedule"),
    "cron": N_("Cron recurrence"),
    "timezone": N_("Time zone"),
    "email": N_("Email"),
    "password": N_("Password"),
    "role": N_("Role"),
    "times": N_("Times of day"),
    "weekdays": N_("Weekdays"),
    "frequency": N_("Frequency"),
}

# One sentence per kind of pydantic error; %(field)s is the field's label.
SENTENCES: dict[str, str] = {
    "missing": N_("%(field)s is required."),
    "empty": N_("%(field)s cannot be empty."),
    "string_too_short": N_("%(field)s must have at least %(min_length)s characters."),
    "string_too_long": N_("%(field)s can have at most %(max_length)s characters."),
    "too_short": N_("%(field)s needs at least %(min_length)s entries."),
    "too_long": N_("%(field)s can have at most %(max_length)s entries."),
    "choice": N_("Choose one of the offered values for %(field)s."),
    "int": N_("%(field)s must be a whole number."),
    "float": N_("%(field)s must be a number."),
    "bool": N_("%(field)s must be yes or no."),
    "greater_than": N_("%(field)s must be greater than %(gt)s."),
    "greater_than_equal": N_("%(field)s must be at least %(ge)s."),
    "less_than": N_("%(field)s must be less than %(lt)s."),
    "less_than_equal": N_("%(field)s must be at most %(le)s."),
    "string_pattern_mismatch": N_("%(field)s has a form that is not allowed."),
    "date": N_("%(field)s must be a date (YYYY-MM-DD)."),
    "datetime": N_("%(field)s must be a date and time."),
    "url": N_("%(field)s must be a web address."),
    "extra_forbidden": N_("%(field)s is not expected here."),
    "json_invalid": N_("%(field)s is not valid JSON."),
    "finite": N_("%(field)s must be a finite number."),
    "problem": N_("%(field)s: %(problem)s"),
    "invalid": N_("%(field)s is not valid."),
}
KINDS = {
    "literal_error": "choice", "enum": "choice", "union_tag_invalid": "choice", "union_tag_not_found": "choice",
    "int_parsing": "int", "int_type": "int", "int_from_float": "int", "int_parsing_size": "int",
    "float_parsing": "float", "float_type": "float", "bool_parsing": "bool", "bool_type": "bool",
    "date_parsing": "date", "date_type": "date", "date_from_datetime_parsing": "date",
    "datetime_parsing": "datetime", "datetime_type": "datetime", "datetime_from_date_parsing": "datetime",
    "url_parsing": "url", "url_type": "url", "url_scheme": "url", "finite_number": "finite",
    "value_error": "problem", "assertion_error": "problem",
}  # fmt: skip

# What the rule checks say about a condition's value (segments/rules.py), in the reader's words.
PROBLEMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        (r"^takes no value", N_("this operator takes no value.")),
        (r"^needs a list of at least one value", N_("give at least one value.")),
        (r"^takes at most (?P<n>\d+) values", N_("give at most %(n)s values.")),
        (r"^needs a list of two values", N_("give two values: the lowest and the highest.")),
        (r"^needs a whole number of days from 0 to (?P<n>\d+)", N_("give a whole number of days from 0 to %(n)s.")),
        (r"^needs one value", N_("give a value.")),
        (r"^text values cannot contain NUL", N_("text values cannot contain NUL characters.")),
        (r"is not a finite number$", N_("numbers must be finite.")),
        (r"^groups are nested more than (?P<n>\d+) deep", N_("groups can be nested at most %(n)s deep.")),
        (r"^a rule has at most (?P<n>\d+) conditions", N_("a rule can have at most %(n)s conditions.")),
    )
)  # fmt: skip
RULE_TAGS = ("condition", "group")


def errors_of(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors, kept to what a JSON answer can carry (``loc``, ``type``, ``msg``, ``ctx``)."""
    found = []
    for error in exc.errors(include_url=False, include_input=False):
        ctx = {
            key: value
            for key, value in (error.get("ctx") or {}).items()
            if isinstance(value, str | int | float)
        }
        if error["type"] in ("value_error", "assertion_error"):
            ctx["problem"] = (
                str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
            )
        found.append({"loc": list(error["loc"]), "type": error["type"], "msg": error["msg"], "ctx": ctx})
    return found


def capitalised(text: str) -> str:
    """A sentence starts upper-case (the services' messages start lower-case) and ends with a stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…" else text + "."


def problem_text(tr: Translator, problem: str) -> str:
    """A known rule problem in the reader's words; else the service's (English) words."""
    detail = problem.split(": ", 1)[-1] if re.match(r"^\S+ \S+: ", problem) else problem
    for pattern, text in PROBLEMS:
        found = pattern.search(detail)
        if found:
            return tr(text, **found.groupdict())
    return localise_text(tr, detail)


def sentence(tr: Translator, error: Mapping[str, Any], label: str) -> str:
    """One pydantic error as a sentence about the field labelled ``label``."""
    kind = str(error.get("type", ""))
    ctx = dict(error.get("ctx") or {})
    if kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1:
        kind = "empty"
    kind = kind if kind in SENTENCES else KINDS.get(kind, "invalid")
    if kind == "problem":
        problem = str(ctx.get("problem") or str(error.get("msg", "")).removeprefix("Value error, "))
        return capitalised(tr(SENTENCES[kind], field=label, problem=problem_text(tr, problem)))
    values = {key: ctx.get(key, "") for key in ("min_length", "max_length", "gt", "ge", "lt", "le")}
    return tr(SENTENCES[kind], field=label, **values)


def rule_place(tr: Translator, loc: Sequence[object], problem: str = "") -> str:
    """``["items", 1, "group", "items", 2, "condition"]`` → *Group 2 › condition 3*.

    With the rule check's problem (``city eq: needs one value``) the condition is named too:
    *Condition 3 (city equals)*.
    """
    positions = [at for at, part in enumerate(loc) if isinstance(part, int)]
    indexes = [int(str(loc[at])) for at in positions]
    if not indexes:
        return tr(N_("Rule"))
    places = [tr(N_("group %(n)s"), n=index + 1) for index in indexes[:-1]]
    is_group = list(loc[positions[-1] + 1 : positions[-1] + 2]) == ["group"]
    places.append(
        tr(N_("group %(n)s"), n=indexes[-1] + 1) if is_group else tr(N_("condition %(n)s"), n=indexes[-1] + 1)
    )
    text = " › ".join(places)
    named = re.match(r"^(\S+) (\S+): ", problem)
    if named and named.group(2) in LABELS["operator"]:
        text += f" ({named.group(1)} {tr(LABELS['operator'][named.group(2)])})"
    return text[0].upper() + text[1:]


def clean_loc(loc: Iterable[object]) -> list[object]:
    """A location without the places FastAPI adds (``body``) or the tags of a rule's items."""
    return [part for part in loc if part not in ("body", "query", "path", *RULE_TAGS)]


def english(error: Mapping[str, Any]) -> str:
    """The API's message for one error: the same sentence, in English, naming the dotted field."""
    loc = clean_loc(error.get("loc", ()))
    return sentence(Translator("en"), error, ".".join(str(part) for part in loc) or "request")


# ---------------------------------------------------------------- the services' messages

PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdifr]")


@cache
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Every service template of the catalogs as a pattern matching its English sentences, the most
    specific first (templates with no words of their own, ``%(place)s: %(reason)s``, match nothing)."""
    found = []
    for message in i18n.read_catalog(i18n.TRANSLATED[0], "errors"):
        template = str(message.id or "")
        literal = PLACEHOLDER.sub("", template).replace("%%", "%")
        if not PLACEHOLDER.search(template) or not re.search(r"[A-Za-z]{2}", literal):
            continue
        pattern, at = "", 0
        for found_placeholder in PLACEHOLDER.finditer(template):
            pattern += re.escape(template[at : found_placeholder.start()].replace("%%", "%"))
            name = found_placeholder.group(1)
            pattern += f"(?P={name})" if f"(?P<{name}>" in pattern else f"(?P<{name}>.*?)"
            at = found_placeholder.end()
        pattern += re.escape(template[at:].replace("%%", "%"))
        found.append((len(literal), template, re.compile(f"^{pattern}$", re.DOTALL)))
    return tuple((template, compiled) for _, template, compiled in sorted(found, key=lambda f: -f[0]))


def _fill(text: str, values: Mapping[str, object]) -> str:
    """A translated template with its placeholders replaced by ``values`` as they are."""
    return PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), text).replace("%%", "%")


def localise_text(tr: Translator, text: str, *, depth: int = 0) -> str:
    """A service's English message (as stored: a run's error, a notice) in the reader's language.

    The message is matched against the services' templates to find its values again; each value
    that is itself a service message (a platform's refusal inside "the list … could not be used")
    is translated the same way. A message no template matches is kept as the service wrote it.
    """
    if tr.lang == i18n.SOURCE_LANGUAGE or not text:
        return text
    exact = i18n.translations(tr.lang).gettext(text)
    if exact != text or depth > 3:
        return exact
    for template, pattern in _patterns():
        found = pattern.match(text)
        if found:
            values = {k: _value(tr, k, v, depth + 1) for k, v in found.groupdict().items()}
            return _fill(i18n.translations(tr.lang).gettext(template), values)
    return text


# Values named so that are stored words with a label (a run's status): shown by their label.
VALUE_LABELS = {"status": "run_status"}


def _value(tr: Translator, name: str, value: str, depth: int) -> str:
    label = LABELS.get(VALUE_LABELS.get(name, ""), {}).get(value)
    return tr(label) if label else localise_text(tr, value, depth=depth)


def localise(tr: Translator, template: str, params: Mapping[str, object]) -> str:
    """A service's message template with its values, in the reader's language (values that are
    service messages themselves translated too)."""
    if not params:
        return localise_text(tr, template)
    values = {k: _value(tr, k, v, 0) if isinstance(v, str) else v for k, v in params.items()}
    if tr.lang == i18n.SOURCE_LANGUAGE:
        return template % params
    return _fill(i18n.translations(tr.lang).gettext(template), values)


def error_sentence(tr: Translator, error: SegmentSyncError) -> str:
    """A domain error in the reader's language, as a sentence."""
    return capitalised(localise(tr, error.template, error.params))
