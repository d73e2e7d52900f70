"""Everything the emulator holds: accounts, OAuth applications and tokens, limits, faults, counts."""

from __future__ import annotations

from typing import Any

from segmentsync.sandbox.constant_contact.account import Account, Owner
from segmentsync.sandbox.constant_contact.limits import Limits, RateLimiter, updated_limits
from segmentsync.sandbox.constant_contact.oauth import App, Grant, TokenStore, new_app
from segmentsync.sandbox.constant_contact.store import ContactList
from segmentsync.sandbox.faults import FaultState

ACCOUNT_SCOPES = frozenset(
    {"account_read", "account_update", "contact_data", "campaign_data", "offline_access"}
)


class Stats:
    """Requests per route template (``"POST /v3/activities/contacts_json_import"``) and per status."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.statuses: dict[str, int] = {}
        self.limited: dict[str, int] = {}

    def record(self, route: str, status: int) -> None:
        self.requests[route] = self.requests.get(route, 0) + 1
        key = str(status)
        self.statuses[key] = self.statuses.get(key, 0) + 1

    def count_limited(self, kind: str) -> None:
        self.limited[kind] = self.limited.get(kind, 0) + 1

    def to_json(self, injected: dict[str, int]) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "total": sum(self.requests.values()),
            "statuses": dict(sorted(self.statuses.items())),
            "limited": dict(self.limited),
            "injected": dict(injected),
        }


class Emulator:
    def __init__(self) -> None:
        self.faults = FaultState()  # the middleware holds this object: reset it in place
        self._clear()

    def reset(self) -> None:
        """``POST /_sandbox/reset``: forget data, applications, tokens, faults, limits, counts."""
        self.faults.reset()
        self._clear()

    def _clear(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.apps: dict[str, App] = {}
        self.tokens = TokenStore()
        self.limits = Limits()
        self.limiter = RateLimiter()
        self.token_limiter = RateLimiter()
        self.stats = Stats()

    def create_app(self, name: str, redirect_uris: tuple[str, ...] = ()) -> App:
        app = new_app(name, redirect_uris)
        self.apps[app.client_id] = app
        return app

    def create_account(self, name: str, owner: Owner | None = None) -> Account:
        account = Account(name, owner)
        self.accounts[account.account_id] = account
        return account

    def account_with_tokens(
        self, name: str, owner: Owner | None = None, scopes: frozenset[str] = ACCOUNT_SCOPES
    ) -> dict[str, Any]:
        """``POST /_sandbox/accounts``: an account, an application, and tokens ready to use."""
        account = self.create_account(name, owner)
        app = self.create_app(f"{name} app")
        tokens = self.tokens.issue(
            Grant(account.account_id, app.client_id, scopes), self.limits.access_token_seconds
        )
        return {
            "access_token": tokens["access_token"],
            "refresh_token": tokens.get("refresh_token"),  # none without offline_access
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "account_id": account.account_id,
        }

    def update_limits(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Part of ``POST /_sandbox/faults``; ``ValueError`` for unknown keys or bad values."""
        if changes:
            before = self.limits
            self.limits = updated_limits(before, changes)
            if before.requests_per_second != self.limits.requests_per_second:
                self.limiter.clear_buckets()
            if before.token_requests_per_second != self.limits.token_requests_per_second:
                self.token_limiter.clear_buckets()
            if before.rows_per_second != self.limits.rows_per_second:
                for account in self.accounts.values():
                    account.activities.reschedule(self.limits.rows_per_second)
        return self.limits.model_dump()

    def find_list(self, list_id: str) -> tuple[Account, ContactList] | None:
        for account in self.accounts.values():
            lst = account.live_list(list_id)
            if lst is not None:
                return account, lst
        return None
