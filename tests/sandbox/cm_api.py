"""A thin HTTP helper for the Campaign Monitor emulator's contract tests (real HTTP, no mocks)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from segmentsync.sandbox.launcher import Sandbox

API = "/api/v3.3"


class CM:
    """One sandbox client (with its API key) and plain HTTP calls to the emulator."""

    def __init__(self, sandbox: Sandbox, name: str = "Acme") -> None:
        self.sandbox = sandbox
        self.http = httpx.Client(base_url=sandbox.campaign_monitor_url, timeout=30)
        created = sandbox.create_cm_client(name)
        self.client_id: str = created["ClientID"]
        self.api_key: str = created["ApiKey"]
        self.auth = httpx.BasicAuth(self.api_key, "x")

    def close(self) -> None:
        self.http.close()

    def api(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        auth: httpx.Auth | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        return self.http.request(
            method,
            API + path,
            json=json,
            params=params,
            auth=auth or self.auth,
            headers=headers,
            content=content,
        )

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def new_list(self, title: str = "Newsletter", **settings: Any) -> str:
        response = self.api("POST", f"/lists/{self.client_id}.json", json={"Title": title, **settings})
        assert response.status_code == 201, response.text
        list_id: str = response.json()
        return list_id

    def new_field(
        self, list_id: str, name: str, data_type: str = "Text", options: list[str] | None = None
    ) -> str:
        body = {"FieldName": name, "DataType": data_type, "Options": options or []}
        response = self.api("POST", f"/lists/{list_id}/customfields.json", json=body)
        assert response.status_code == 201, response.text
        key: str = response.json()
        return key

    def import_rows(
        self, list_id: str, rows: list[dict[str, Any]], *, resubscribe: bool = True
    ) -> httpx.Response:
        body = {
            "Subscribers": rows,
            "Resubscribe": resubscribe,
            "QueueSubscriptionBasedAutoResponders": False,
        }
        return self.api("POST", f"/subscribers/{list_id}/import.json", json=body)

    def add(self, list_id: str, email: str, **fields: Any) -> httpx.Response:
        body = {"EmailAddress": email, "ConsentToTrack": "Yes", "Resubscribe": True, **fields}
        return self.api("POST", f"/subscribers/{list_id}.json", json=body)

    def get(self, list_id: str, email: str, *, tracking: bool = True) -> httpx.Response:
        params = {"email": email, "includetrackingpreference": str(tracking)}
        return self.api("GET", f"/subscribers/{list_id}.json", params=params)

    def subscribers(self, list_id: str) -> dict[str, dict[str, Any]]:
        """The control read-back, by lower-cased address."""
        response = self.http.get(f"/_sandbox/lists/{list_id}/subscribers")
        assert response.status_code == 200, response.text
        return {row["EmailAddress"].lower(): row for row in response.json()}

    def set_state(self, list_id: str, email: str, state: str) -> httpx.Response:
        return self.http.post(
            f"/_sandbox/lists/{list_id}/subscribers/state", json={"EmailAddress": email, "State": state}
        )

    def control(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(f"/_sandbox/{path}", json=body or {})

    def oauth_token(
        self, *, scope: str = "ManageLists,ImportSubscribers", client_choice: str | None = None
    ) -> dict[str, Any]:
        """The whole authorization-code flow over HTTP: register, authorize, approve, exchange."""
        app = self.control("oauth_apps", {"Name": "segmentsync"}).json()
        redirect_uri = "http://127.0.0.1:9/callback"
        page = self.http.get(
            "/oauth",
            params={
                "client_id": app["client_id"],
                "redirect_uri": redirect_uri,
                "scope": scope,
                "state": "s1",
            },
        )
        assert page.status_code == 200, page.text
        form = {
            "app_client_id": app["client_id"],
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": "s1",
            "client_id": client_choice or self.client_id,
            "decision": "approve",
        }
        approved = self.http.post("/oauth", data=form)
        assert approved.status_code == 302, approved.text
        code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
        exchange = {
            "grant_type": "authorization_code",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "redirect_uri": redirect_uri,
            "code": code,
        }
        response = self.http.post("/oauth/token", data=exchange)
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens | {"app": app}


def row(email: str, consent: str = "Yes", **fields: Any) -> dict[str, Any]:
    return {"EmailAddress": email, "ConsentToTrack": consent, **fields}
