"""The error table: what to do about each answer of a platform, as data.

Every failed request is classified once, by :func:`classify`, from the first rule of ``RULES``
that matches it (most specific first: platform + HTTP status + platform error code, then
platform + status, then any platform). The table is rendered into ``docs/destinations.md`` by
:func:`render_markdown` and a test keeps the two equal.

Actions:

* ``RETRY`` — transient (5xx, timeouts, dropped connections): retried with exponential backoff
  and jitter (stamina), bounded by attempts and time; when they run out, ``Retriable``.
* ``RATE_LIMITED`` — wait as the platform says, then repeat; never counted as a failed attempt.
* ``REFRESH_TOKEN`` — the OAuth access token expired: refresh it, then repeat (not an attempt).
* ``CONFIG_ERROR`` — bad or revoked credentials, missing permission, unknown list: ``ConfigError``
  with the platform's message; the connection or export needs an admin.
* ``REJECT_ROWS`` — the platform refused the row(s) of this request; they end as REJECTED (or,
  for a Campaign Monitor import, the per-row ``ResultData`` is read).
* ``QUOTA_EXCEEDED`` — the daily quota is spent: ``QuotaExceeded`` with the reset time.
* ``FATAL`` — permanent, retrying cannot help (usually a bug of ours): ``Fatal``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import httpx

ANY = "*"
CAMPAIGN_MONITOR = "campaign_monitor"
CONSTANT_CONTACT = "constant_contact"
OAUTH = "oauth"  # the token endpoints of both platforms


class Reaction(StrEnum):
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    REFRESH_TOKEN = "refresh_token"  # noqa: S105  # an action's name, not a secret
    CONFIG_ERROR = "config_error"
    REJECT_ROWS = "reject_rows"
    QUOTA_EXCEEDED = "quota_exceeded"
    FATAL = "fatal"


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table. ``status``: an HTTP status, several, or "4xx"/"5xx" for a class."""

    action: Reaction
    why: str
    platform: str = ANY
    status: int | tuple[int, ...] | str | None = None
    code: str | None = None  # Campaign Monitor "Code", Constant Contact "error_key", OAuth "error"
    exception: type[Exception] | None = None  # a transport failure instead of an answer
    error_code: str | None = None  # the ``code`` of the ConfigError raised (default by status)

    def matches(self, platform: str, status: int | None, code: str | None, exc: Exception | None) -> bool:
        if self.platform not in (ANY, platform):
            return False
        if self.exception is not None:
            return exc is not None and isinstance(exc, self.exception)
        if exc is not None or status is None:
            return False
        if isinstance(self.status, str):
            status_ok = str(status)[0] == self.status[0]
        elif isinstance(self.status, tuple):
            status_ok = status in self.status
        else:
            status_ok = self.status == status
        return status_ok and (self.code is None or self.code == code)


A = Reaction
CM, CC = CAMPAIGN_MONITOR, CONSTANT_CONTACT
RULES: tuple[Rule, ...] = (
    # Campaign Monitor: {"Code": n, "Message": ...}
    Rule(A.REFRESH_TOKEN, "Code 121 Expired OAuth Token: refresh, then repeat", CM, 401, "121"),
    Rule(A.CONFIG_ERROR, "Code 101 Invalid ListID", CM, (400, 401), "101", error_code="unknown_list"),
    Rule(A.CONFIG_ERROR, "Code 102 Invalid ClientID", CM, (400, 401), "102", error_code="unknown_client"),
    Rule(A.CONFIG_ERROR, "Codes 50, 100 bad API key; 120, 122 bad or revoked token; 60 scope", CM, 401),
    Rule(A.CONFIG_ERROR, "unknown list or resource", CM, 404, error_code="unknown_list"),
    Rule(A.REJECT_ROWS, "Code 210 import had some failures: per-row ResultData", CM, 400, "210"),
    Rule(A.FATAL, "Code 209 more than 1,000 subscribers in one import (a bug of ours)", CM, 400, "209"),
    Rule(A.FATAL, "Code 212 empty import (a bug of ours)", CM, 400, "212"),
    Rule(A.REJECT_ROWS, "a refusal of the row(s) sent: Codes 1, 203-208, 214, 215, 220, 221 …", CM, 400),
    Rule(A.RATE_LIMITED, "wait X-RateLimit-Reset s; per-subscriber 429 (no headers): short pause", CM, 429),
    # Constant Contact: [{"error_key": ..., "error_message": ...}] (401 and 429: a bare object)
    Rule(A.REFRESH_TOKEN, "expired and invalid tokens look alike: refresh once, then CONFIG_ERROR", CC, 401),
    Rule(A.CONFIG_ERROR, "missing scope or user privilege, deactivated application", CC, 403),
    Rule(A.CONFIG_ERROR, "unknown list", CC, 404, error_code="unknown_list"),
    Rule(A.RATE_LIMITED, "throttled: over 4 requests/s for the application, wait 1 s", CC, 429, "throttled"),
    Rule(A.QUOTA_EXCEEDED, "10,000 requests/day per application, until 00:00 UTC", CC, 429, "quota_exceeded"),
    Rule(A.RATE_LIMITED, "1,000 queued activities for the account: wait for some to finish", CC, 429),
    Rule(A.REJECT_ROWS, "validation error of the rows sent", CC, 400),
    # Token endpoints: {"error": ..., "error_description": ...}
    Rule(A.RATE_LIMITED, "token endpoint rate limit (Constant Contact: 1 request/s)", OAUTH, 429),
    Rule(A.CONFIG_ERROR, "invalid_grant, invalid_client …: re-authenticate the connection", OAUTH, "4xx"),
    # Any platform
    Rule(A.RETRY, "connect, read, write or pool timeout; a stalled answer", exception=httpx.TimeoutException),
    Rule(A.RETRY, "connection refused, reset or dropped", exception=httpx.NetworkError),
    Rule(A.RETRY, "connection closed mid-answer", exception=httpx.RemoteProtocolError),
    Rule(A.FATAL, "any other transport failure (bad URL, unsupported protocol)", exception=httpx.HTTPError),
    Rule(A.RETRY, "request timeout", status=408),
    Rule(A.RATE_LIMITED, "too many requests", status=429),
    Rule(A.RETRY, "server error, bad gateway, unavailable, gateway timeout", status="5xx"),
    Rule(A.FATAL, "any other client error (415, 405, 409 …)", status="4xx"),
)
del A, CM, CC


def classify(
    platform: str,
    *,
    status: int | None = None,
    code: str | None = None,
    exc: Exception | None = None,
    rules: tuple[Rule, ...] = RULES,
) -> Rule:
    """The first rule matching a failed request (an HTTP answer, or a transport exception)."""
    for rule in rules:
        if rule.matches(platform, status, code, exc):
            return rule
    return Rule(Reaction.FATAL, "no rule matches")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one request. Rate-limit waits use neither attempts nor ``timeout``."""

    attempts: int = 6  # failed attempts (RETRY) before giving up
    timeout: float = 120.0  # seconds of failing attempts and their backoff
    wait_initial: float = 0.5
    wait_max: float = 30.0
    wait_jitter: float = 1.0
    rate_limit_budget: float = 3600.0  # seconds one request may spend waiting on rate limits


@dataclass(frozen=True, slots=True)
class Tuning:
    """Timeouts, retries and polling of one destination (tests make them short)."""

    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(60.0, connect=10.0, pool=60.0))
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    refresh_margin: float = 300.0  # refresh an OAuth token this many seconds before it expires
    poll_initial: float = 0.5  # Constant Contact activity polling: first wait, growing x1.5 …
    poll_max: float = 10.0  # … up to this
    poll_timeout: float = 3600.0  # an activity not final by then is resubmitted
    short_rate_wait: float = 1.0  # a 429 that says nothing about when to come back
    requests_per_second: float | None = None  # None: the platform's documented rate (Limits)


def config_error_code(rule: Rule, status: int) -> str:
    """The ``code`` of the ConfigError a CONFIG_ERROR rule raises."""
    return rule.error_code or ("unauthorized" if status in (401, 403) else "config_error")


def render_markdown(rules: tuple[Rule, ...] = RULES) -> str:
    """The table as Markdown, for docs/destinations.md."""
    lines = ["| platform | HTTP status | code / exception | action | why |", "|---|---|---|---|---|"]
    for rule in rules:
        if isinstance(rule.status, tuple):
            status = ", ".join(map(str, rule.status))
        else:
            status = "" if rule.status is None else str(rule.status)
        what = rule.exception.__name__ if rule.exception else (f"`{rule.code}`" if rule.code else "any")
        action = rule.action.upper() + (f" `{rule.error_code}`" if rule.error_code else "")
        lines.append(f"| {rule.platform} | {status} | {what} | {action} | {rule.why} |")
    return "\n".join(lines) + "\n"
