"""From posted forms to the services' input models, and from errors back to the form's fields.

Every problem of a submission is shown at once, each beside its field, as a sentence in the
page's language naming the field as the form labels it (:mod:`segmentsync.web.messages`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from segmentsync.errors import Invalid, SegmentSyncError
from segmentsync.web import messages
from segmentsync.web.page import Page

M = TypeVar("M", bound=BaseModel)
FORM_ERROR = "__all__"  # an error that concerns the whole form, shown above it
RULE_PATH = re.compile(r"^rules(?:\.(?:items|\d+|condition|group|op|negate))*")


def invalid(exc: ValidationError, *, prefix: tuple[str, ...] = ()) -> Invalid:
    """Invalid carrying every error of ``exc`` (``details.errors``), the first one as its field."""
    found = messages.errors_of(exc)
    for error in found:
        error["loc"] = [*prefix, *error["loc"]]
    first = found[0] if found else {"loc": list(prefix), "msg": "invalid"}
    where = ".".join(str(part) for part in messages.clean_loc(first["loc"]))
    return Invalid(
        "%(where)s: %(first)s",
        params={"where": where, "first": first["msg"]},
        field=where or None,
        details={"errors": found},
    )


def build(model: type[M], data: Mapping[str, Any]) -> M:
    """The service's input model, or Invalid listing every wrong field (``details.errors``)."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise invalid(exc) from exc


def _target(fields: Mapping[str, str], name: str, default: str) -> str:
    """The form field for a service's field name: whole, then its last part, then its first."""
    parts = name.split(".")
    return fields.get(name) or fields.get(parts[-1]) or fields.get(parts[0]) or default


def _label(page: Page, target: str, labels: Mapping[str, str]) -> str:
    text = labels.get(target) or messages.FIELD_LABELS.get(target)
    return page._(text) if text else target


def _add(errors: dict[str, str], target: str, text: str) -> None:
    errors[target] = f"{errors[target]} {text}" if target in errors and text not in errors[target] else text


def field_errors(page: Page, error: SegmentSyncError, fields: Mapping[str, str] | None = None,
                 *, default: str = FORM_ERROR, labels: Mapping[str, str] | None = None) -> dict[str, str]:  # fmt: skip
    """``{form field: message}`` for a domain error; ``fields`` maps the service's field names.

    A validation error gives one sentence per problem (all of them); a field the form does not
    show (or none) puts the message above the form. ``labels`` names the form's fields where
    they differ from :data:`messages.FIELD_LABELS` (marked with ``N_``).
    """
    fields = fields or {}
    labels = labels or {}
    found: dict[str, str] = {}
    for problem in error.each_problem:  # a service's checks (errors.Problems), each in its own words
        _add(found, _target(fields, problem.field or "", default), page.error_text(problem))
    listed = [e for e in error.details.get("errors", []) if isinstance(e, dict) and "type" in e]
    for item in listed if not error.each_problem else ():
        loc = messages.clean_loc(item.get("loc", ()))
        target = _target(fields, ".".join(str(part) for part in loc), default)
        if loc and loc[0] == "rules" and len(loc) > 1:
            raw = [part for part in item["loc"] if part not in ("body", "rules")]
            label = messages.rule_place(page.tr, raw, str(item.get("ctx", {}).get("problem", "")))
        else:
            label = _label(page, target, labels)
        _add(found, target, messages.sentence(page.tr, item, label))
    if found:
        return found
    name = error.field or ""
    target = _target(fields, name, default)
    text = page.error_text(error)
    if name.startswith("rules.") and text == error.message:
        # "rules.items.1.items.2 (city = 'x'): …" → "Group 2 › condition 3 (city = 'x'): …"
        path = RULE_PATH.match(text)
        if path and path.group(0) != "rules":
            loc = [int(p) if p.isdigit() else p for p in path.group(0).split(".")[1:]]
            text = messages.rule_place(page.tr, loc) + text[path.end() :]
    elif name and text.startswith(f"{name}: "):
        text = f"{_label(page, target, labels)}: {text[len(name) + 2 :]}"
    return {target: messages.capitalised(text)}
