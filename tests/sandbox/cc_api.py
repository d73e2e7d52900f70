"""A thin HTTP helper for the Constant Contact emulator's contract tests (real HTTP, no mocks)."""

from __future__ import annotations

from typing import Any

import httpx

from segmentsync.sandbox.launcher import Sandbox

FAST = {"requests_per_second": None, "instant_activities": True}


class CC:
    """One sandbox account (with its tokens) and plain HTTP calls to the emulator.

    By default the rate limit is off and activities complete at once; tests of those limits set
    them back with :meth:`limits`.
    """

    def __init__(self, sandbox: Sandbox, name: str = "Acme", *, fast: bool = True) -> None:
        self.sandbox = sandbox
        self.http = httpx.Client(base_url=sandbox.constant_contact_url, timeout=30)
        created = sandbox.create_cc_account(name)
        self.account_id: str = created["account_id"]
        self.access_token: str = created["access_token"]
        self.refresh_token: str = created["refresh_token"]
        self.client_id: str = created["client_id"]
        self.client_secret: str = created["client_secret"]
        if fast:
            self.limits(**FAST)

    def close(self) -> None:
        self.http.close()

    def bearer(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.access_token}"}

    def api(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """A call under ``/v3`` (or a path-relative ``/v3/...`` href) with the account's token."""
        url = path if path.startswith("/v3") else "/v3" + path
        return self.http.request(
            method,
            url,
            json=json,
            params=params,
            content=content,
            headers=self.bearer(token) | (headers or {}),
        )

    def control(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(f"/_sandbox/{path}", json=body or {})

    def limits(self, **changes: Any) -> dict[str, Any]:
        response = self.control("faults", changes)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.http.get("/_sandbox/stats").json()
        return result

    def new_list(self, name: str = "Newsletter", **fields: Any) -> str:
        response = self.api("POST", "/contact_lists", json={"name": name, **fields})
        assert response.status_code == 201, response.text
        list_id: str = response.json()["list_id"]
        return list_id

    def new_field(self, label: str, type_: str = "string") -> dict[str, Any]:
        response = self.api("POST", "/contact_custom_fields", json={"label": label, "type": type_})
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def start_import(self, list_ids: list[str], rows: list[dict[str, Any]]) -> httpx.Response:
        return self.api(
            "POST", "/activities/contacts_json_import", json={"import_data": rows, "list_ids": list_ids}
        )

    def import_rows(self, list_ids: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Import and return the activity as GET shows it afterwards (complete: activities are instant)."""
        response = self.start_import(list_ids, rows)
        assert response.status_code == 201, response.text
        return self.activity(response.json()["activity_id"])

    def activity(self, activity_id: str) -> dict[str, Any]:
        response = self.api("GET", f"/activities/{activity_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def members(self, list_id: str) -> dict[str, dict[str, Any]]:
        """The control read-back of a list, by email."""
        response = self.http.get(f"/_sandbox/lists/{list_id}/members")
        assert response.status_code == 200, response.text
        return {member["email"]: member for member in response.json()["members"]}

    def contact(
        self, email: str, *, include: str = "list_memberships,custom_fields", status: str = "all"
    ) -> dict[str, Any]:
        response = self.api("GET", "/contacts", params={"email": email, "include": include, "status": status})
        assert response.status_code == 200, response.text
        contacts = response.json()["contacts"]
        assert len(contacts) == 1, contacts
        result: dict[str, Any] = contacts[0]
        return result


def error_keys(response: httpx.Response) -> list[str]:
    """The keys of the platform's array error body (asserting it IS an array)."""
    body = response.json()
    assert isinstance(body, list), body
    assert all(set(item) == {"error_key", "error_message"} for item in body), body
    return [item["error_key"] for item in body]
