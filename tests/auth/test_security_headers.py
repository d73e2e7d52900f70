"""Every answer carries the security headers: a strict Content-Security-Policy (no inline script,
no framing), nosniff, a Referrer-Policy, no caching of signed-in answers, and HSTS when cookies
are HTTPS-only. The templates hold nothing the policy would block."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from segmentsync.api.app import create_app
from segmentsync.runtime import Runtime
from segmentsync.web.templating import TEMPLATES_DIR

from .conftest import Person

PATHS = ["/sign-in", "/exports", "/api/v1/me", "/api/v1/nowhere", "/static/app.js", "/metrics"]


# Headers do not depend on the store: SQLite only (the sessions and audit tests cover both).
ON_SQLITE = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def directives(policy: str) -> dict[str, str]:
    return {part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2] for part in policy.split(";")}


@ON_SQLITE
@pytest.mark.parametrize("signed_in", [False, True])
def test_every_answer_has_the_security_headers(client: TestClient, admin: Person, signed_in: bool) -> None:
    for path in PATHS:
        answer = client.get(path, headers=admin.auth if signed_in else {}, follow_redirects=False)
        csp = directives(answer.headers["content-security-policy"])
        assert csp["frame-ancestors"] == "'none'", path
        assert csp["script-src"] == "'self'", path  # no 'unsafe-inline', no 'unsafe-eval'
        assert csp["style-src"] == "'self'", path
        assert csp["object-src"] == "'none'", path
        assert answer.headers["x-frame-options"] == "DENY", path
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["referrer-policy"] == "same-origin", path
        assert "strict-transport-security" not in answer.headers, path  # plain HTTP: no HSTS
        if not path.startswith("/static/"):
            assert answer.headers["cache-control"] == "no-store", path


@ON_SQLITE
def test_hsts_is_sent_when_cookies_are_https_only(runtime: Runtime) -> None:
    runtime.settings.secure_cookies = True
    answer = TestClient(create_app(runtime), base_url="https://testserver").get("/sign-in")
    assert answer.headers["strict-transport-security"].startswith("max-age=31536000")


@ON_SQLITE
def test_an_error_page_and_a_refused_body_have_them_too(app: FastAPI) -> None:
    client = TestClient(app)
    too_large = client.post("/api/v1/session", content=b"x" * 2_000_000)
    assert too_large.status_code == 413
    assert "frame-ancestors 'none'" in too_large.headers["content-security-policy"]


def test_no_template_has_inline_script_handlers_or_styles() -> None:
    found = []
    for template in sorted(TEMPLATES_DIR.glob("*.html")):
        text = template.read_text(encoding="utf-8")
        inline_scripts = [tag for tag in re.findall(r"<script\b[^>]*>", text)
                          if "src=" not in tag and 'type="application/json"' not in tag]  # fmt: skip
        handlers = re.findall(r"\son[a-z]+\s*=", text)
        styles = re.findall(r"\sstyle\s*=|<style\b", text)
        urls = re.findall(r"javascript:", text)
        if inline_scripts or handlers or styles or urls:
            found.append(f"{template.name}: {inline_scripts + handlers + styles + urls}")
    assert not found, "move these into static files:\n" + "\n".join(found)
