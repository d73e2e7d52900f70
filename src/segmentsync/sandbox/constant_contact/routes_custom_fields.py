"""``/v3/contact_custom_fields``: list (cursor paging), create, read one."""

from __future__ import annotations

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


async def create_custom_field(call: Call) -> Response:
    data = await call.json_object()
    label, type_ = data.get("label"), data.get("type")
    if not isinstance(label, str) or not label.strip() or len(label) > 50:
        raise bad_request("label is required and must be 1 to 50 characters.")
    if not isinstance(type_, str) or len(type_) > 20:
        raise bad_request("type is required and must be at most 20 characters.")
    extra: dict[str, object] = {}
    if "metadata" in data:
        extra["metadata"] = data["metadata"]
    if "choices" in data:
        choices = data["choices"]
        if not isinstance(choices, list) or len(choices) > 100:
            raise bad_request("choices must be an array of at most 100 choices.")
        extra["choices"] = choices
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
