"""What each action of the error table does to a request: retries, waits, refreshes, errors.

Driven through the real destinations with a scripted transport and a fake clock: no sockets,
no real waiting.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from segmentsync.destinations import create_destination
from segmentsync.destinations.api_client import GIVEN_UP
from segmentsync.destinations.base import Credentials, Destination, TokenSet
from segmentsync.errors import ConfigError, Fatal, QuotaExceeded, Retriable

from .fakes import FAST, FakeTime, Script, json_response

LIST = {"ListID": "a" * 32, "Title": "Newsletter"}
STATS = {"TotalActiveSubscribers": 7}
CM_KEY = Credentials(api_key="key", client_id="c" * 32)


def cm(script: Script, time: FakeTime, credentials: Credentials = CM_KEY, on_tokens=None) -> Destination:  # type: ignore[no-untyped-def]  # a test helper
    return create_destination(
        "campaign_monitor",
        credentials=credentials,
        api_url="https://cm.test/api/v3.3",
        oauth_url="https://cm.test/oauth",
        on_tokens=on_tokens,
        transport=script.transport,
        clock=time.clock,
        sleep=time.sleep,
        tuning=FAST,
    )


def details_then_stats(request: httpx.Request) -> httpx.Response:
    return json_response(200, STATS if request.url.path.endswith("stats.json") else LIST)


def test_server_errors_are_retried_until_an_answer() -> None:
    script = Script(
        json_response(500, {"Code": 500, "Message": "oops"}), httpx.ReadTimeout("stalled"), details_then_stats
    )
    info = cm(script, FakeTime()).describe_list("a" * 32)
    assert (info.name, info.member_count) == ("Newsletter", 7)
    assert len(script.requests) == 4  # 2 failures, then details and stats


def test_retries_run_out_into_retriable() -> None:
    script = Script(httpx.ConnectError("refused"))
    with pytest.raises(Retriable, match=r"failed 3 times.*ConnectError"):
        cm(script, FakeTime()).describe_list("a" * 32)
    assert len(script.requests) == FAST.retry.attempts


def test_a_run_given_up_tries_a_failed_request_no_more() -> None:
    """A worker that gave the run up (its lease could not be renewed) leaves a failed batch to the
    next owner: retrying it would send it again after the next owner did."""
    script = Script(httpx.ReadTimeout("stalled"), details_then_stats)
    given_up = threading.Event()
    given_up.set()
    token = GIVEN_UP.set(given_up)
    try:
        with pytest.raises(Retriable, match="not tried again: the run was given up"):
            cm(script, FakeTime()).describe_list("a" * 32)
    finally:
        GIVEN_UP.reset(token)
    assert len(script.requests) == 1
    given_up.clear()  # while the run is held, the same failure is retried
    script = Script(httpx.ReadTimeout("stalled"), details_then_stats)
    token = GIVEN_UP.set(given_up)
    try:
        assert cm(script, FakeTime()).describe_list("a" * 32).name == "Newsletter"
    finally:
        GIVEN_UP.reset(token)
    assert len(script.requests) == 3


def test_rate_limits_are_waited_out_without_using_attempts() -> None:
    limited = json_response(
        429,
        {"Code": 429, "Message": "Rate limit exceeded"},
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "7"},
    )
    error = json_response(503, {"Code": 503, "Message": "busy"})
    time = FakeTime()
    script = Script(limited, error, limited, error, limited, limited, limited, details_then_stats)
    assert cm(script, time).describe_list("a" * 32).name == "Newsletter"
    assert time.slept.count(7) == 5  # each 429 paused everyone for X-RateLimit-Reset seconds
    assert len(script.requests) == 9  # 5 rate limits and 2 errors: within 3 attempts


def test_a_rate_limit_that_never_ends_gives_up_after_its_budget() -> None:
    limited = json_response(
        429, {"Code": 429, "Message": "Rate limit exceeded"}, {"X-RateLimit-Reset": "600"}
    )
    with pytest.raises(Retriable, match="still rate limited"):
        cm(Script(limited), FakeTime()).describe_list("a" * 32)


def test_bad_credentials_are_a_config_error_with_the_platform_message() -> None:
    script = Script(
        json_response(401, {"Code": 50, "Message": "Must supply a valid HTTP Basic Authorization header"})
    )
    with pytest.raises(ConfigError, match="Must supply a valid HTTP Basic Authorization header") as caught:
        cm(script, FakeTime()).verify()
    assert caught.value.details["platform_code"] == "50"
    assert len(script.requests) == 1


def test_a_client_error_of_ours_is_fatal_at_once() -> None:
    script = Script(json_response(418, {"Code": 418, "Message": "I'm a teapot"}))
    with pytest.raises(Fatal, match="teapot"):
        cm(script, FakeTime()).verify()
    assert len(script.requests) == 1


def oauth_credentials(expires_in: timedelta) -> Credentials:
    return Credentials(
        access_token="old-access",
        refresh_token="old-refresh",
        expires_at=datetime.fromtimestamp(FakeTime().now, UTC) + expires_in,
        client_id="c" * 32,
    )


def token_answer(request: httpx.Request) -> httpx.Response:
    return json_response(
        200, {"access_token": "new-access", "expires_in": 1209600, "refresh_token": "new-refresh"}
    )


def test_an_expired_token_is_refreshed_saved_then_used() -> None:
    events: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        events.append(f"api {request.headers['authorization']}")
        if request.headers["authorization"] == "Bearer old-access":
            return json_response(401, {"Code": 121, "Message": "Expired OAuth Token"})
        return details_then_stats(request)

    def token(request: httpx.Request) -> httpx.Response:
        events.append(f"token {request.content.decode()}")
        return token_answer(request)

    def route(request: httpx.Request) -> httpx.Response:
        return token(request) if request.url.path == "/oauth/token" else api(request)

    saved: list[TokenSet] = []
    destination = cm(
        Script(route),
        FakeTime(),
        oauth_credentials(timedelta(days=3)),
        lambda t: (saved.append(t), events.append("saved")),
    )
    destination.describe_list("a" * 32)
    assert events == [
        "api Bearer old-access",
        "token grant_type=refresh_token&refresh_token=old-refresh",
        "saved",
        "api Bearer new-access",
        "api Bearer new-access",
    ]
    assert saved[0].refresh_token == "new-refresh"


def test_a_token_about_to_expire_is_refreshed_before_use() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return token_answer(request)
        assert request.headers["authorization"] == "Bearer new-access"
        return details_then_stats(request)

    saved: list[TokenSet] = []
    cm(Script(route), FakeTime(), oauth_credentials(timedelta(seconds=30)), saved.append).describe_list(
        "a" * 32
    )
    assert len(saved) == 1


def test_threads_refresh_once_between_them() -> None:
    refreshes = 0
    gate = threading.Barrier(8)

    def route(request: httpx.Request) -> httpx.Response:
        nonlocal refreshes
        if request.url.path == "/oauth/token":
            refreshes += 1
            return token_answer(request)
        if request.headers["authorization"] == "Bearer old-access":
            gate.wait(timeout=5)  # all eight hold the old token before anyone refreshes
            return json_response(401, {"Code": 121, "Message": "Expired OAuth Token"})
        return json_response(200, [])

    destination = cm(Script(route), FakeTime(), oauth_credentials(timedelta(days=3)), lambda t: None)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: destination.custom_fields("a" * 32), range(8)))
    assert answers == [[]] * 8
    assert refreshes == 1


def test_tokens_that_cannot_be_saved_stop_the_destination() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return token_answer(request)
        return json_response(401, {"Code": 121, "Message": "Expired OAuth Token"})

    def broken(tokens: TokenSet) -> None:
        raise OSError("the database is gone")

    script = Script(route)
    destination = cm(script, FakeTime(), oauth_credentials(timedelta(days=3)), broken)
    with pytest.raises(ConfigError, match=r"could not be saved.*the database is gone"):
        destination.verify()
    sent = len(script.requests)
    with pytest.raises(ConfigError, match="could not be saved"):
        destination.verify()
    assert len(script.requests) == sent  # nothing more was sent with the dead tokens


def test_a_refused_refresh_is_a_config_error() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return json_response(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "Specified refresh_token was invalid or expired",
                },
            )
        return json_response(401, {"Code": 121, "Message": "Expired OAuth Token"})

    with pytest.raises(ConfigError, match="invalid or expired"):
        cm(Script(route), FakeTime(), oauth_credentials(timedelta(days=3))).verify()


def cc(script: Script, time: FakeTime, app: str) -> Destination:
    return create_destination(
        "constant_contact",
        credentials=Credentials(access_token="token", refresh_token="refresh", oauth_client_id=app),
        api_url="https://cc.test/v3",
        oauth_url="https://cc.test/oauth2/default/v1",
        on_tokens=None,
        transport=script.transport,
        clock=time.clock,
        sleep=time.sleep,
        tuning=FAST,
    )


def test_a_spent_daily_quota_stops_every_destination_of_the_application_until_midnight() -> None:
    time = FakeTime()
    script = Script(json_response(429, {"error_key": "quota_exceeded", "error_message": "Limit Exceeded"}))
    with pytest.raises(QuotaExceeded) as caught:
        cc(script, time, "app-quota").describe_list("l")
    assert caught.value.resets_at == datetime(2027, 1, 16, tzinfo=UTC)
    with pytest.raises(QuotaExceeded):
        cc(script, time, "app-quota").describe_list("l")  # another destination, same application
    assert len(script.requests) == 1
    time.advance(timedelta(days=1))
    script.answers = [json_response(200, {"list_id": "l", "name": "L", "membership_count": 3})]
    assert cc(script, time, "app-quota").describe_list("l").member_count == 3


def test_requests_of_one_application_are_spaced_to_four_a_second() -> None:
    time = FakeTime()
    script = Script(json_response(200, {"list_id": "l", "name": "L"}))
    first, second = cc(script, time, "app-pace"), cc(script, time, "app-pace")
    for _ in range(4):
        first.describe_list("l")
        second.describe_list("l")
    assert sum(time.slept) == pytest.approx(7 * 0.25)


def test_a_throttled_answer_pauses_then_repeats() -> None:
    time = FakeTime()
    throttled = json_response(429, {"error_key": "throttled", "error_message": "Too Many Requests"})
    script = Script(throttled, throttled, json_response(200, {"list_id": "l", "name": "L"}))
    assert cc(script, time, "app-throttle").describe_list("l").name == "L"
    assert sum(time.slept) >= 2 * FAST.short_rate_wait
