"""One harness per platform for the contract suite: accounts, lists and read-back in the sandbox.

Everything a contract test needs beyond the ``Destination`` itself goes through the sandbox's
control endpoints (``/_sandbox/...``) or the platform's own API over real HTTP.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from segmentsync.destinations import create_destination
from segmentsync.destinations.base import Credentials, Destination, FieldType, OnTokens, TokenSet
from segmentsync.destinations.oauth import CampaignMonitorOAuth, ConstantContactOAuth
from segmentsync.destinations.policy import RetryPolicy, Tuning
from segmentsync.sandbox.launcher import Sandbox

# Short timeouts and waits, many attempts: fault tests must not flake, nor take long.
SANDBOX_TUNING = Tuning(
    timeout=httpx.Timeout(3.0),
    retry=RetryPolicy(attempts=10, timeout=60, wait_initial=0.01, wait_max=0.1, wait_jitter=0.01),
    poll_initial=0.02,
    poll_max=0.2,
    short_rate_wait=0.3,
    requests_per_second=40,
)
REDIRECT_URI = "https://segmentsync.test/oauth/callback"


@dataclass(frozen=True)
class Seen:
    """A member as the platform holds it, read back through the sandbox."""

    state: str  # "active", "unsubscribed", "deleted" …
    name: str
    fields: dict[str, str] = field(default_factory=dict)


class Platform:
    type: str
    name_key: str  # the Member.fields key of the person's name

    def __init__(self, sandbox: Sandbox, base_url: str, api_url: str, oauth_url: str) -> None:
        self.sandbox = sandbox
        self.api_url = api_url
        self.oauth_url = oauth_url
        self.control = httpx.Client(base_url=base_url, timeout=30)
        self.saved: list[TokenSet] = []

    def credentials(self) -> Credentials:
        raise NotImplementedError

    def destination(
        self,
        credentials: Credentials | None = None,
        *,
        on_tokens: OnTokens | None = None,
        tuning: Tuning = SANDBOX_TUNING,
    ) -> Destination:
        return create_destination(
            self.type,
            credentials=credentials or self.credentials(),
            api_url=self.api_url,
            oauth_url=self.oauth_url,
            on_tokens=on_tokens if on_tokens is not None else self.saved.append,
            tuning=tuning,
        )

    def faults(self, **changes: Any) -> dict[str, Any]:
        answer = self.control.post("/_sandbox/faults", json=changes)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control.get("/_sandbox/stats").json()
        return result

    def expire_tokens(self) -> None:
        self.control.post("/_sandbox/tokens/expire", json={}).raise_for_status()

    def new_list(self, name: str) -> str:
        raise NotImplementedError

    def read_back(self, list_id: str) -> dict[str, Seen]:
        raise NotImplementedError

    def unsubscribe(self, list_id: str, email: str) -> None:
        """The person opts out on the platform's side."""
        raise NotImplementedError

    def refresh_with(self, refresh_token: str) -> TokenSet:
        raise NotImplementedError


class CampaignMonitor(Platform):
    type = "campaign_monitor"
    name_key = "Name"

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(
            sandbox,
            sandbox.campaign_monitor_url,
            sandbox.campaign_monitor_api,
            sandbox.campaign_monitor_oauth,
        )
        client = sandbox.create_cm_client("Contract client")
        self.client_id, self.api_key = client["ClientID"], client["ApiKey"]
        self.app: dict[str, str] = {}

    def credentials(self) -> Credentials:
        return Credentials(api_key=self.api_key, client_id=self.client_id)

    def oauth_credentials(self) -> Credentials:
        """Through the real flow: register an app, approve on the authorize page, exchange the code."""
        self.app = self.control.post("/_sandbox/oauth_apps", json={"Name": "segmentsync"}).json()
        oauth = CampaignMonitorOAuth(self.oauth_url)
        state = secrets.token_urlsafe(8)
        scope = "ImportSubscribers,ManageLists"
        page = self.control.get(oauth.authorize_url(self.app["client_id"], REDIRECT_URI, scope, state))
        assert page.status_code == 200, page.text
        decision = self.control.post(
            "/oauth",
            data={
                "app_client_id": self.app["client_id"],
                "redirect_uri": REDIRECT_URI,
                "scope": scope,
                "state": state,
                "client_id": self.client_id,
                "decision": "approve",
            },
        )
        query = parse_qs(urlsplit(decision.headers["location"]).query)
        assert query["state"] == [state]
        tokens = oauth.exchange_code(
            self.app["client_id"], self.app["client_secret"], REDIRECT_URI, query["code"][0]
        )
        oauth.close()
        return Credentials(
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_at=tokens.expires_at,
            client_id=self.client_id,
        )

    def refresh_with(self, refresh_token: str) -> TokenSet:
        with CampaignMonitorOAuth(self.oauth_url) as oauth:
            return oauth.refresh(refresh_token)

    def new_list(self, name: str) -> str:
        answer = httpx.post(
            f"{self.api_url}/lists/{self.client_id}.json",
            json={"Title": name, "UnsubscribeSetting": "OnlyThisList"},
            auth=(self.api_key, "x"),
        )
        answer.raise_for_status()
        list_id: str = answer.json()
        return list_id

    def read_back(self, list_id: str) -> dict[str, Seen]:
        rows = self.control.get(f"/_sandbox/lists/{list_id}/subscribers").json()
        return {
            row["EmailAddress"].lower(): Seen(
                row["State"].lower(), row["Name"], {f["Key"]: f["Value"] for f in row["CustomFields"]}
            )
            for row in rows
        }

    def unsubscribe(self, list_id: str, email: str) -> None:
        answer = self.control.post(
            f"/_sandbox/lists/{list_id}/subscribers/state",
            json={"EmailAddress": email, "State": "Unsubscribed"},
        )
        answer.raise_for_status()


class ConstantContact(Platform):
    type = "constant_contact"
    name_key = "first_name"

    def __init__(self, sandbox: Sandbox, **account: Any) -> None:
        """``account``: facts of the account and its token (see ``Sandbox.create_cc_account``)."""
        super().__init__(
            sandbox,
            sandbox.constant_contact_url,
            sandbox.constant_contact_api,
            sandbox.constant_contact_oauth,
        )
        self.account = sandbox.create_cc_account("Contract account", **account)
        # activities finish at once and the platform allows our test pace, unless a test says otherwise
        self.faults(instant_activities=True, requests_per_second=SANDBOX_TUNING.requests_per_second)

    def credentials(self) -> Credentials:
        return Credentials(
            access_token=self.account["access_token"],
            refresh_token=self.account["refresh_token"],
            oauth_client_id=self.account["client_id"],
            oauth_client_secret=self.account["client_secret"],
        )

    def refresh_with(self, refresh_token: str) -> TokenSet:
        with ConstantContactOAuth(self.oauth_url) as oauth:
            return oauth.refresh(self.account["client_id"], self.account["client_secret"], refresh_token)

    def new_list(self, name: str) -> str:
        answer = httpx.post(
            f"{self.api_url}/contact_lists",
            json={"name": name},
            headers={"Authorization": f"Bearer {self.account['access_token']}"},
        )
        answer.raise_for_status()
        list_id: str = answer.json()["list_id"]
        return list_id

    def read_back(self, list_id: str) -> dict[str, Seen]:
        rows = self.control.get(f"/_sandbox/lists/{list_id}/members").json()["members"]
        return {
            row["email"]: Seen(
                "unsubscribed" if row["permission_to_send"] == "unsubscribed" else "active",
                row["first_name"] or "",
                dict(row["custom_fields"]),
            )
            for row in rows
        }

    def unsubscribe(self, list_id: str, email: str) -> None:
        self.control.post("/_sandbox/contacts/unsubscribe", json={"email": email}).raise_for_status()


PLATFORMS = {"campaign_monitor": CampaignMonitor, "constant_contact": ConstantContact}
FIELD = ("City", FieldType.TEXT)
