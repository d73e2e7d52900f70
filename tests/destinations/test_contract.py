"""The contract every destination keeps, checked against both platforms' sandboxes over real HTTP.

Each test runs once per platform (the ``platform`` fixture) and reads the platform's state back
through the sandbox, so "delivered" means "the platform holds it", not "the client said so".
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from segmentsync.destinations.base import Credentials, Destination, FieldType, Member, TokenSet
from segmentsync.errors import ConfigError, QuotaExceeded
from segmentsync.exports.models import Outcome

from .platforms import SANDBOX_TUNING, Platform

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def destination(platform: Platform) -> Iterator[Destination]:
    dest = platform.destination()
    yield dest
    dest.close()


def people(platform: Platform, numbers: range, *, known: bool | None = None, tag: str = "") -> list[Member]:
    return [
        Member(
            f"person{i}@example.com",
            {platform.name_key: f"Person {i}{tag}"},
            consent_to_track="Yes",
            delivered_before=known,
        )
        for i in numbers
    ]


def outcomes(results: list) -> list[Outcome]:  # type: ignore[type-arg]  # RowResults
    return [result.outcome for result in results]


def test_credentials_lists_and_one_list(platform: Platform, destination: Destination) -> None:
    list_id = platform.new_list("Newsletter")
    assert destination.verify().account_id
    assert ("Newsletter", list_id) in [(info.name, info.list_id) for info in destination.lists()]
    destination.upsert(list_id, people(platform, range(3)))
    described = destination.describe_list(list_id)
    assert (described.name, described.member_count) == ("Newsletter", 3)


def test_new_members_then_existing_ones(platform: Platform, destination: Destination) -> None:
    list_id = platform.new_list("Customers")
    first = destination.upsert(list_id, people(platform, range(5), known=False))
    assert outcomes(first) == [Outcome.NEW] * 5
    again = people(platform, range(5), known=True, tag=" renamed") + people(
        platform, range(5, 8), known=False
    )
    second = destination.upsert(list_id, again)
    assert outcomes(second) == [Outcome.UPDATED] * 5 + [Outcome.NEW] * 3
    assert [r.email for r in second] == [m.email for m in again]
    seen = platform.read_back(list_id)
    assert sorted(seen) == sorted(m.email for m in again)
    assert seen["person0@example.com"].name == "Person 0 renamed"
    assert {s.state for s in seen.values()} == {"active"}


def test_an_invalid_row_is_rejected_and_the_others_delivered(
    platform: Platform, destination: Destination
) -> None:
    list_id = platform.new_list("Partial")
    members = [*people(platform, range(2)), Member("not-an-address@example", {}, consent_to_track="Yes")]
    results = destination.upsert(list_id, members)
    assert outcomes(results) == [Outcome.NEW, Outcome.NEW, Outcome.REJECTED]
    assert results[2].code
    assert results[2].message
    assert sorted(platform.read_back(list_id)) == ["person0@example.com", "person1@example.com"]


def test_someone_unsubscribed_in_the_platform_is_skipped_not_resubscribed(
    platform: Platform, destination: Destination
) -> None:
    list_id = platform.new_list("Opt-outs")
    destination.upsert(list_id, people(platform, range(3)))
    platform.unsubscribe(list_id, "person1@example.com")
    results = destination.upsert(list_id, people(platform, range(3), known=True, tag=" again"))
    assert outcomes(results) == [Outcome.UPDATED, Outcome.SKIPPED, Outcome.UPDATED]
    assert "unsubscribed" in (results[1].message or "")
    assert platform.read_back(list_id)["person1@example.com"].state == "unsubscribed"


def test_remove_takes_members_off_the_list(platform: Platform, destination: Destination) -> None:
    list_id = platform.new_list("Mirror")
    destination.upsert(list_id, people(platform, range(4)))
    gone = ["person1@example.com", "person3@example.com", "never-there@example.com"]
    assert outcomes(destination.remove(list_id, gone)) == [Outcome.REMOVED] * 3
    seen = platform.read_back(list_id)
    active = sorted(email for email, s in seen.items() if s.state == "active")
    assert active == ["person0@example.com", "person2@example.com"]


def test_custom_fields_are_created_filled_and_trimmed(platform: Platform, destination: Destination) -> None:
    list_id = platform.new_list("Fields")
    created = destination.create_custom_field(list_id, "City", FieldType.TEXT)
    assert created.key in [info.key for info in destination.custom_fields(list_id)]
    long_city = "Rīga " * 100
    members = [
        Member("a@example.com", {created.key: "Tallinn"}, consent_to_track="Yes"),
        Member("b@example.com", {created.key: long_city}, consent_to_track="Yes"),
    ]
    results = destination.upsert(list_id, members)
    assert outcomes(results) == [Outcome.NEW, Outcome.NEW]
    assert "trimmed" in (results[1].message or "")
    seen = platform.read_back(list_id)
    assert seen["a@example.com"].fields == {"City": "Tallinn"}
    assert long_city.startswith(seen["b@example.com"].fields["City"])
    with pytest.raises(ConfigError, match="Shoe size"):
        destination.upsert(list_id, [Member("c@example.com", {"cf:Shoe size": "42", "[Shoe size]": "42"})])


def test_an_unknown_list_is_a_config_error(platform: Platform, destination: Destination) -> None:
    unknown = "0" * 32 if platform.type == "campaign_monitor" else "00000000-0000-0000-0000-000000000000"
    with pytest.raises(ConfigError):
        destination.describe_list(unknown)
    with pytest.raises(ConfigError):
        destination.upsert(unknown, people(platform, range(1)))


def test_bad_credentials_are_a_config_error_with_a_clear_message(platform: Platform) -> None:
    good = platform.credentials()
    bad = Credentials(
        api_key="not-a-key" if good.api_key else None,
        client_id=good.client_id,
        access_token="not-a-token" if good.access_token else None,
        refresh_token="not-a-refresh-token" if good.refresh_token else None,
        oauth_client_id=good.oauth_client_id,
        oauth_client_secret=good.oauth_client_secret,
    )
    dest = platform.destination(bad)
    with pytest.raises(ConfigError) as caught:
        dest.verify()
    dest.close()
    message = str(caught.value).lower()
    assert platform.type.replace("_", " ") in message
    assert any(word in message for word in ("authorization", "api key", "invalid", "unauthorized"))


def test_an_expired_token_is_refreshed_and_the_new_pair_saved(platform: Platform) -> None:
    credentials = (
        platform.oauth_credentials() if hasattr(platform, "oauth_credentials") else platform.credentials()
    )
    saved: list[TokenSet] = []
    dest = platform.destination(credentials, on_tokens=saved.append)
    list_id = platform.new_list("Tokens")
    platform.expire_tokens()
    assert outcomes(dest.upsert(list_id, people(platform, range(2)))) == [Outcome.NEW] * 2
    dest.close()
    assert len(saved) == 1
    assert saved[0].access_token != credentials.access_token
    assert saved[0].expires_at > datetime.now(UTC)
    with pytest.raises(ConfigError, match=r"invalid|expired"):  # the old refresh token is dead
        platform.refresh_with(credentials.refresh_token or "")
    assert platform.refresh_with(saved[0].refresh_token).access_token  # the saved one works


def test_a_burst_stays_within_the_rate_limit_without_failing(platform: Platform) -> None:
    if platform.type == "campaign_monitor":
        platform.faults(rate_limit=10, rate_limit_window_seconds=1)  # emits X-RateLimit-* headers
        tuning = SANDBOX_TUNING
    else:
        platform.faults(requests_per_second=4)  # the real limit, and our own default pace
        tuning = replace(SANDBOX_TUNING, requests_per_second=None)
    list_id = platform.new_list("Burst")
    dest = platform.destination(tuning=tuning)
    with ThreadPoolExecutor(4) as pool:
        described = list(pool.map(lambda _: dest.describe_list(list_id), range(12)))
    dest.close()
    assert {info.name for info in described} == {"Burst"}
    if platform.type == "constant_contact":
        assert platform.stats()["limited"].get("throttled", 0) == 0


def test_faults_in_transit_still_deliver_every_member_exactly_once(platform: Platform) -> None:
    tuning = replace(SANDBOX_TUNING, timeout=httpx.Timeout(1.0))
    dest = platform.destination(tuning=tuning)
    list_id = platform.new_list("Flaky")
    platform.faults(error_rate=0.15, drop_rate=0.15, stall_rate=0.1, stall_seconds=1.5, seed=11)
    members = people(platform, range(2500))
    # in batches of 250 (the run engine's share of a bigger batch): enough requests for faults to hit
    results = [r for start in range(0, 2500, 250) for r in dest.upsert(list_id, members[start : start + 250])]
    dest.close()
    injected = platform.faults()
    assert set(outcomes(results)) <= {Outcome.NEW, Outcome.UPDATED}
    assert len(results) == 2500
    seen = platform.read_back(list_id)
    assert sorted(seen) == sorted(m.email for m in members)
    assert {s.state for s in seen.values()} == {"active"}
    assert sum(injected["injected"].values()) > 0


def test_constant_contact_daily_quota_stops_until_midnight(platform: Platform) -> None:
    if platform.type != "constant_contact":
        pytest.skip("a daily quota is Constant Contact's")
    list_id = platform.new_list("Quota")
    platform.faults(daily_quota=1)  # creating the list was the day's one request
    dest = platform.destination()
    with pytest.raises(QuotaExceeded) as caught:
        dest.describe_list(list_id)
    dest.close()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    assert caught.value.resets_at == datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)
