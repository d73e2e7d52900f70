"""An admin's browser on the platforms' consent pages: read the form, approve or deny, and follow
the platform's redirect back to our callback (with httpx, over real HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
from fastapi.testclient import TestClient

from .conftest import Person


@dataclass
class Form:
    action: str = ""
    hidden: dict[str, str] = field(default_factory=dict)
    selects: dict[str, list[str]] = field(default_factory=dict)  # name -> option values


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.form = Form()
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.form.action = found.get("action", "")
        elif tag == "input" and "name" in found:  # hidden fields, and the CC page's account name
            self.form.hidden[found["name"]] = found.get("value", "")
        elif tag == "select":
            self._select = found["name"]
            self.form.selects[self._select] = []
        elif tag == "option" and self._select is not None:
            self.form.selects[self._select].append(found.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def consent(authorize_url: str, *, decision: str = "approve", choose: dict[str, str] | None = None) -> str:
    """Open the consent page, submit it; returns where the platform redirects the browser."""
    with httpx.Client(timeout=10) as browser:
        page = browser.get(authorize_url)
        assert page.status_code == 200, page.text
        parser = _FormParser()
        parser.feed(page.text)
        form = parser.form
        data = dict(form.hidden)
        for name, options in form.selects.items():
            data[name] = (choose or {}).get(name, options[0])
        data["decision"] = decision
        answer = browser.post(urljoin(authorize_url, form.action), data=data)
        assert answer.status_code in (302, 303), answer.text
        return answer.headers["location"]


def land(client: TestClient, person: Person, location: str) -> httpx.Response:
    """The browser arrives at our callback (signed in as ``person``)."""
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == "http://testserver"
    answer: httpx.Response = client.get(
        f"{parts.path}?{parts.query}", headers=person.auth, follow_redirects=False
    )
    return answer


def connect(client: TestClient, admin: Person, body: dict[str, object], **choose: str) -> int:
    """The whole OAuth connect flow for a new connection; returns its id."""
    started = client.post(
        "/api/v1/connections/oauth/start", json={"consent": True, **body}, headers=admin.auth
    )
    assert started.status_code == 200, started.text
    landed = land(client, admin, consent(started.json()["authorize_url"], choose=choose or None))
    assert landed.status_code == 303, landed.text
    return int(landed.headers["location"].rsplit("/", 1)[1])
