"""The error table, row by row: what each answer of each platform leads to."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from segmentsync.destinations.policy import (
    CAMPAIGN_MONITOR as CM,
)
from segmentsync.destinations.policy import (
    CONSTANT_CONTACT as CC,
)
from segmentsync.destinations.policy import (
    OAUTH,
    RULES,
    Reaction,
    classify,
    config_error_code,
    render_markdown,
)

A = Reaction
DOCS = Path(__file__).parents[2] / "docs" / "destinations.md"


@pytest.mark.parametrize(
    ("platform", "status", "code", "action"),
    [
        # Campaign Monitor: {"Code", "Message"}
        (CM, 401, "121", A.REFRESH_TOKEN),  # Expired OAuth Token
        (CM, 401, "50", A.CONFIG_ERROR),  # Must supply a valid HTTP Basic Authorization header
        (CM, 401, "100", A.CONFIG_ERROR),  # Invalid API Key
        (CM, 401, "120", A.CONFIG_ERROR),  # Invalid OAuth Token
        (CM, 401, "122", A.CONFIG_ERROR),  # Revoked OAuth Token
        (CM, 401, "60", A.CONFIG_ERROR),  # missing permission
        (CM, 401, "101", A.CONFIG_ERROR),  # Invalid ListID (the emulator's status)
        (CM, 400, "101", A.CONFIG_ERROR),  # Invalid ListID (the other possible status)
        (CM, 400, "102", A.CONFIG_ERROR),
        (CM, 404, "404", A.CONFIG_ERROR),
        (CM, 400, "210", A.REJECT_ROWS),  # import had some failures: ResultData
        (CM, 400, "1", A.REJECT_ROWS),  # Invalid Email Address (delete / unsubscribe of one row)
        (CM, 400, "203", A.REJECT_ROWS),  # not in list
        (CM, 400, "206", A.REJECT_ROWS),
        (CM, 400, "209", A.FATAL),  # over 1,000 in one import: our bug
        (CM, 400, "212", A.FATAL),  # empty import: our bug
        (CM, 429, "429", A.RATE_LIMITED),
        (CM, 500, "500", A.RETRY),
        (CM, 502, None, A.RETRY),
        (CM, 503, None, A.RETRY),
        (CM, 418, "418", A.FATAL),
        (CM, 405, "405", A.FATAL),
        # Constant Contact: error_key
        (CC, 401, "unauthorized", A.REFRESH_TOKEN),
        (CC, 403, "forbidden", A.CONFIG_ERROR),
        (CC, 404, "contacts.api.not_found", A.CONFIG_ERROR),
        (CC, 429, "throttled", A.RATE_LIMITED),
        (CC, 429, "quota_exceeded", A.QUOTA_EXCEEDED),
        (CC, 429, None, A.RATE_LIMITED),
        (CC, 400, "contacts.api.validation.error", A.REJECT_ROWS),
        (CC, 409, "contacts.api.conflict", A.FATAL),
        (CC, 415, "contacts.api.unsupported_media_type", A.FATAL),
        (CC, 500, "server_error", A.RETRY),
        (CC, 504, None, A.RETRY),
        (CC, 408, None, A.RETRY),
        # token endpoints
        (OAUTH, 400, "invalid_grant", A.CONFIG_ERROR),
        (OAUTH, 401, "invalid_client", A.CONFIG_ERROR),
        (OAUTH, 429, None, A.RATE_LIMITED),
        (OAUTH, 503, None, A.RETRY),
    ],
)
def test_an_answer_leads_to_its_action(
    platform: str, status: int, code: str | None, action: Reaction
) -> None:
    assert classify(platform, status=status, code=code).action is action


@pytest.mark.parametrize(
    ("exc", "action"),
    [
        (httpx.ConnectTimeout("connect"), A.RETRY),
        (httpx.ReadTimeout("read"), A.RETRY),
        (httpx.WriteTimeout("write"), A.RETRY),
        (httpx.PoolTimeout("pool"), A.RETRY),
        (httpx.ConnectError("refused"), A.RETRY),
        (httpx.ReadError("reset"), A.RETRY),
        (httpx.RemoteProtocolError("closed mid-answer"), A.RETRY),
        (httpx.UnsupportedProtocol("ftp://"), A.FATAL),
    ],
)
@pytest.mark.parametrize("platform", [CM, CC, OAUTH])
def test_a_transport_failure_leads_to_its_action(platform: str, exc: Exception, action: Reaction) -> None:
    assert classify(platform, exc=exc).action is action


def test_every_rule_can_be_reached() -> None:
    """No rule is shadowed by an earlier, broader one."""
    for rule in RULES:
        if rule.exception is not None:
            continue
        if isinstance(rule.status, tuple):
            status: int | None = rule.status[0]
        else:
            status = int(str(rule.status).replace("xx", "18")) if rule.status is not None else None
        platform = rule.platform if rule.platform != "*" else "somewhere"
        assert classify(platform, status=status, code=rule.code) is rule, rule


@pytest.mark.parametrize(
    ("platform", "status", "code", "error_code"),
    [
        (CM, 401, "101", "unknown_list"),
        (CM, 400, "101", "unknown_list"),
        (CM, 401, "102", "unknown_client"),
        (CM, 401, "50", "unauthorized"),
        (CC, 403, "forbidden", "unauthorized"),
        (CC, 404, "contacts.api.not_found", "unknown_list"),
        (OAUTH, 400, "invalid_grant", "config_error"),
    ],
)
def test_a_config_error_says_what_needs_attention(
    platform: str, status: int, code: str, error_code: str
) -> None:
    assert config_error_code(classify(platform, status=status, code=code), status) == error_code


def test_the_docs_show_the_table_of_the_code() -> None:
    assert render_markdown() in DOCS.read_text(encoding="utf-8")
