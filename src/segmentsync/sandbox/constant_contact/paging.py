"""Cursor paging: the next page is a path-relative ``_links.next.href`` holding an opaque cursor.

Like the real cursor (base64 of ``limit=1&next=2``), ours is base64 of the query that produced the
page with ``next`` set to where the next page starts.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

from segmentsync.sandbox.constant_contact.errors import bad_request


def query_params(query: Mapping[str, str]) -> dict[str, str]:
    """The request's parameters; a ``cursor`` stands for the whole query of the page it continues."""
    cursor = query.get("cursor")
    if cursor is None:
        return dict(query)
    # '+' may come back as ' ' when a client re-encodes the query; accept both alphabets
    text = cursor.replace(" ", "+").replace("-", "+").replace("_", "/")
    try:
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise bad_request("The cursor is invalid.") from exc
    params = dict(parse_qsl(decoded))
    if "next" not in params:
        raise bad_request("The cursor is invalid.")
    return params


def next_links(path: str, params: Mapping[str, str], next_start: int | None) -> dict[str, object]:
    """``{"_links": {"next": {"href": ...}}}`` or ``{}`` on the last page."""
    if next_start is None:
        return {}
    state = {key: value for key, value in params.items() if key not in ("cursor", "next")}
    state["next"] = str(next_start)
    cursor = base64.urlsafe_b64encode(urlencode(state).encode()).decode()
    return {"_links": {"next": {"href": f"{path}?cursor={cursor}"}}}


def int_param(params: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise bad_request(f"{name} must be an integer from {low} to {high}.") from exc
    if not low <= value <= high:
        raise bad_request(f"{name} must be an integer from {low} to {high}.")
    return value


def bool_param(params: Mapping[str, str], name: str) -> bool:
    raw = params.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise bad_request(f"{name} must be true or false.")
    return raw == "true"


def start_param(params: Mapping[str, str]) -> int:
    """Where this page starts (0 without a cursor)."""
    raw = params.get("next", "0")
    if not raw.isdigit():
        raise bad_request("The cursor is invalid.")
    return int(raw)
