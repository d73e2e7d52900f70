"""A form-filling client for the pages (no browser): signs in, keeps the CSRF token, posts forms.

Used by the page tests that run on both metadata stores; the browser tests are in ``test_*``
modules marked ``browser``.
"""

from __future__ import annotations

import re
from html import unescape as _unescape
from typing import Any

import httpx
from fastapi.testclient import TestClient

from segmentsync.api.app import create_app
from segmentsync.runtime import Runtime

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Pages:
    """One browser session on the app: ``get``/``post`` pages as a person would."""

    def __init__(self, runtime: Runtime, *, language: str = "en") -> None:
        self.client = TestClient(create_app(runtime), headers={"Accept-Language": language})
        self.csrf = ""

    def get(self, path: str, **params: Any) -> httpx.Response:
        response = self.client.get(path, params=params or None, follow_redirects=False)
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(
        self, path: str, data: dict[str, Any] | list[tuple[str, str]], *, csrf: bool = True
    ) -> httpx.Response:
        items = list(data.items()) if isinstance(data, dict) else list(data)
        if csrf:
            items.append(("csrf_token", self.csrf))
        return self.client.post(path, data=_encode(items), follow_redirects=False)  # type: ignore[arg-type]

    def sign_in(self, email: str, password: str) -> httpx.Response:
        self.get("/sign-in")
        return self.post("/sign-in", {"email": email, "password": password, "next": "/exports"})


def _encode(items: list[tuple[str, Any]]) -> dict[str, list[str]]:
    """Repeated fields (segment_ids=1&segment_ids=2) as httpx wants them."""
    form: dict[str, list[str]] = {}
    for key, value in items:
        form.setdefault(key, []).append(str(value))
    return form


def field_error(html: str, field: str) -> str:
    """The error shown beside one field (empty if none)."""
    found = re.search(rf'<p class="error" id="err-{re.escape(field)}" role="alert">([^<]*)</p>', html)
    return _unescape(found.group(1)) if found else ""
