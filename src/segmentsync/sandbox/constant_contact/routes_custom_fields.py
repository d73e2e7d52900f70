"""``/v3/contact_custom_fields``: list (cursor paging), create, read one."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from segmentsync.sandbox.constant_contact.errors import bad_request, not_found
from segmentsync.sandbox.constant_contact.paging import int_param, next_links, start_param
from segmentsync.sandbox.constant_contact.render import custom_field_json
from segmentsync.sandbox.constant_contact.routing import Call, Handler, json_response


async def get_custom_fields(call: Call) -> Response:
    params = call.params
    limit = int_param(params, "limit", default=50, low=1, high=100)
    fields = list(call.account.custom_fields.values())
    start = start_param(params)
    end = start + limit
    body: dict[str, Any] = {"custom_fields": [custom_field_json(f) for f in fields[start:end]]}
    body.update(next_links("/v3/contact_custom_fields", params, end if end < len(fields) else None))
    return json_response(body)


# metadata keys and their JSON types (the vendor's CustomField schema)
METADATA = {
    "display_type": str,
    "allow_negative": bool,
    "decimal_places": int,
    "currency_code": str,
    "integer": bool,
    "display_format": str,
}
SELECT_TYPES = frozenset({"single_select", "multi_select"})
DISPLAY_TYPES = {"dropdown": 100, "radio": 20, "checkbox": 20}  # and how many choices each shows


def _metadata(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request("metadata must be an object.")
    for key, item in value.items():
        kind = METADATA.get(key)
        if kind is None:
            raise bad_request(f"metadata.{key} is not a custom field property; known: {', '.join(METADATA)}.")
        if not isinstance(item, kind) or (kind is int and isinstance(item, bool)):
            raise bad_request(f"metadata.{key} must be a {'boolean' if kind is bool else kind.__name__}.")
    places = value.get("decimal_places")
    if places is not None and not (1 if value.get("integer") is False else 0) <= places <= 4:
        raise bad_request("metadata.decimal_places must be 0 to 4 (1 to 4 when integer is false).")
    if "currency_code" in value and not re.fullmatch(r"[A-Z]{3}", value["currency_code"]):
        raise bad_request("metadata.currency_code must be a three-letter currency code.")
    if "display_type" in value and value["display_type"] not in DISPLAY_TYPES:
        raise bad_request(f"metadata.display_type must be one of: {', '.join(DISPLAY_TYPES)}.")
    return dict(value)


def _choices(value: Any, type_: str, display_type: str) -> list[dict[str, Any]]:
    """The choices as given, checked (ids and timestamps are added when the field is created)."""
    limit = DISPLAY_TYPES.get(display_type, 100)
    if type_ not in SELECT_TYPES:
        raise bad_request("choices are only for custom fields of type single_select or multi_select.")
    if not isinstance(value, list) or len(value) > limit:
        raise bad_request(
            f"choices must be an array of at most {limit} choices for display_type {display_type}."
        )
    choices = []
    for n, item in enumerate(value, 1):
        label = item.get("choice_label") if isinstance(item, dict) else None
        if not isinstance(label, str) or not label or len(label) > 255:
            raise bad_request("choices: each choice needs a choice_label of 1 to 255 characters.")
        order = item.get("display_order", n)
        if not isinstance(order, int) or isinstance(order, bool):
            raise bad_request("choices: display_order must be an integer.")
        choices.append({"choice_label": label, "display_order": order})
    return choices


async def create_custom_field(call: Call) -> Response:
    data = await call.json_object()
    label, type_ = data.get("label"), data.get("type")
    if not isinstance(label, str) or not label.strip() or len(label) > 50:
        raise bad_request("label is required and must be 1 to 50 characters.")
    if not isinstance(type_, str) or len(type_) > 20:
        raise bad_request("type is required and must be at most 20 characters.")
    extra: dict[str, Any] = {}
    if data.get("metadata") is not None:
        extra["metadata"] = _metadata(data["metadata"])
    if data.get("choices") is not None:
        display_type = extra.get("metadata", {}).get("display_type", "dropdown")
        extra["choices"] = _choices(data["choices"], type_, display_type)
    if data.get("version") is not None:
        if data["version"] not in (1, 2) or type_ != "date":
            raise bad_request("version is 1 or 2, for custom fields of type date.")
        extra["version"] = data["version"]
    custom_field = call.account.create_custom_field(label, type_, extra)
    return json_response(custom_field_json(custom_field), 201)


async def get_custom_field(call: Call) -> Response:
    custom_field_id = call.path_param("custom_field_id")
    custom_field = call.account.custom_fields.get(custom_field_id)
    if custom_field is None:
        raise not_found(f"The custom field {custom_field_id} was not found.")
    return json_response(custom_field_json(custom_field))


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/v3/contact_custom_fields", get_custom_fields),
    ("POST", "/v3/contact_custom_fields", create_custom_field),
    ("GET", "/v3/contact_custom_fields/{custom_field_id}", get_custom_field),
]
