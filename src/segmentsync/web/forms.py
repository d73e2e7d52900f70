"""From posted forms to the services' input models, and from errors back to the form's fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from segmentsync.errors import Invalid, SegmentSyncError
from segmentsync.web.page import Page

M = TypeVar("M", bound=BaseModel)
FORM_ERROR = "__all__"  # an error that concerns the whole form, shown above it


def build(model: type[M], data: Mapping[str, Any]) -> M:
    """The service's input model, or Invalid naming the first wrong field (``auth.api_key``)."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise Invalid(f"{where}: {message}", field=where or None) from exc


def field_errors(page: Page, error: SegmentSyncError, fields: Mapping[str, str] | None = None,
                 *, default: str = FORM_ERROR) -> dict[str, str]:  # fmt: skip
    """``{form field: message}`` for a domain error; ``fields`` maps the service's field names.

    A field the form does not show (or none) puts the message above the form.
    """
    fields = fields or {}
    name = error.field or ""
    target = fields.get(name)
    if target is None:
        # "auth.api_key" → try the last part, then the first ("rules.items.0" → "rules")
        parts = name.split(".")
        target = fields.get(parts[-1]) or fields.get(parts[0]) or default
    return {target: page.error_text(error)}
