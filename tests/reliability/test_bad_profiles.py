"""Per-row outcomes with bad profiles: every row ends in the right outcome with a clear
reason, and nothing valid is lost — every row reported new or updated is on the platform's list,
and nobody else is.

The corpus: no email, malformed addresses, unicode (in addresses and names), 300-character
addresses and names, NUL bytes (in addresses, names and keys), duplicates differing by case and
spacing, huge fields, header-injection attempts — among 1,000 ordinary profiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import httpx
import pytest
import sqlalchemy as sa

from exports.world import World
from segmentsync.exports.models import Run, RunMember

from .scenario import (
    ON_SQLITE,
    PLATFORMS,
    counts_add_up,
    drive,
    list_url,
    make_export,
    platform_list,
    start_run,
)

ORDINARY = 1_000
CM, CC = PLATFORMS
REJECTED_CM = ("rejected", "Invalid Email Address")  # Campaign Monitor's Code 1


@dataclass(frozen=True)
class Case:
    key: str
    email: str | None
    cm: tuple[str, str | None]  # (outcome, a piece of its reason) on Campaign Monitor
    cc: tuple[str, str | None] | None = None  # on Constant Contact, when it differs
    first_name: str = "Fay"
    only: str | None = None  # a case for one platform only

    def expected(self, platform: str) -> tuple[str, str | None]:
        return self.cc if platform == CC and self.cc is not None else self.cm


NEW: tuple[str, None] = ("new", None)
LONG_LOCAL = "l" * 65 + "@example.com"
CASES = [
    Case("b01", None, ("invalid", "no email address")),
    Case("b02", "", ("invalid", "no email address")),
    Case("b03", "   ", ("invalid", "no email address")),
    Case("b04", "not-an-email", ("invalid", "must have an @-sign")),
    Case("b05", "a@b", ("invalid", "It should have a period")),
    Case("b06", "double@@example.com", ("invalid", "invalid characters: '@'")),
    Case("b07", "with space@example.com", ("invalid", "invalid characters before the @-sign: SPACE")),
    Case("b08", "@example.com", ("invalid", "must be something before the @-sign")),
    Case("b09", "user@", ("invalid", "must be something after the @-sign")),
    Case("b10", "user@.example.com", ("invalid", "period immediately after the @-sign")),
    Case("b11", "John Doe <john@example.com>", ("invalid", "display name and angle brackets")),
    Case("b12", "trailing.dot.@example.com", ("invalid", "period immediately before the @-sign")),
    Case("b13", '"quoted"@example.com', ("invalid", "Quoting the part before the @-sign")),
    Case("b14", "user@example.test", ("invalid", "special-use or reserved name")),
    Case("b15", "user@localhost", ("invalid", "It should have a period")),
    Case("b16", "x" * 290 + "@example.com", ("invalid", "longer than 254 characters")),
    Case("b17", LONG_LOCAL, ("invalid", "before the @-sign is longer than 64 characters")),
    Case("b18", "nul\x00byte@example.com", ("invalid", "invalid characters before the @-sign: U+0000")),
    Case("b19", "\u202euser@example.com", ("invalid", "unsafe characters: RIGHT-TO-LEFT OVERRIDE")),
    Case("b20", "zero\u200bwidth@example.com", ("invalid", "unsafe characters: ZERO WIDTH SPACE")),
    Case("b21", "a@example.com\r\nBcc: x@example.com", ("invalid", "U+000A, U+000D")),
    Case("b22", "12345", ("invalid", "must have an @-sign")),
    # valid for us; a platform may still refuse: then rejected, with the platform's reason
    Case("b23", "a" * 60 + "@" + "b" * 30 + ".example.com", NEW, ("rejected", "longer than 80 characters")),
    Case("b24", "zoë@example.com", REJECTED_CM, ("rejected", "before the @-sign")),
    # Constant Contact refuses it without saying so: see the test at the end
    Case("b25", "user@example.c0m", REJECTED_CM, only=CM),
    # an internationalised domain goes out as ASCII (xn--), and both spellings are one address
    Case("b26", "user@bücher.de", NEW),
    Case("b27", "user@xn--bcher-kva.de", ("invalid", "duplicate of profile b26")),
    # normalised: trimmed, lower case; duplicates by case and spacing keep the lowest key
    Case("b28", "  Upper.Case@Example.COM ", NEW),
    Case("b29", "dup@example.com", NEW),
    Case("b30", "DUP@Example.com", ("invalid", "duplicate of profile b29 (same email)")),
    # a tab is not trimmed (only spaces are): invalid, with a clear reason
    Case("b31", " dup@example.com\t", ("invalid", "invalid characters: U+0009")),
    Case("b32", "plus+tag@example.com", NEW),
    Case("b33", "o'brien@example.com", NEW),
    # names: unicode kept, NUL bytes dropped, long and huge values trimmed (with a note)
    Case("b34", "unicode.names@example.com", NEW, first_name="Żaneta 😀 Ω"),
    Case("b35", "nul.name@example.com", NEW, first_name="Ann\x00a"),
    Case("b36", "long.name@example.com", ("new", "trimmed to 250"), ("new", "trimmed to 50"), "N" * 300),
    Case("b37", "huge.name@example.com", ("new", "trimmed to 250"), ("new", "trimmed to 50"), "H" * 200_000),
    # hostile keys: a NUL byte, 300 characters
    Case("b38\x00", "nul.key@example.com", NEW),
    Case("k" * 300, "long.key@example.com", NEW),
]
LAST_NAME = "שָׁלוֹם"  # right-to-left, with combining marks


def write_corpus(world: World, cases: list[Case]) -> None:
    con = duckdb.connect(str(world.runtime.settings.data_dir / "profiles.duckdb"))
    try:
        con.execute(
            "CREATE OR REPLACE TABLE profiles (profile_id VARCHAR, email VARCHAR, first_name VARCHAR, "
            "last_name VARCHAR, city VARCHAR, age INTEGER, country VARCHAR, consent VARCHAR)"
        )
        con.executemany(
            "INSERT INTO profiles VALUES (?, ?, ?, ?, 'Oslo', 30, 'PL', 'yes')",
            [[case.key, case.email, case.first_name, LAST_NAME] for case in cases],
        )
        con.execute(
            "INSERT INTO profiles SELECT 'ok' || lpad(CAST(i AS VARCHAR), 5, '0'), "
            "'ordinary' || i || '@example.com', 'Ord', 'Inary', 'Riga', 40, 'LV', 'no' "
            f"FROM range(1, {ORDINARY + 1}) t(i)"
        )
    finally:
        con.close()


def outcomes(world: World, run: Run) -> dict[str, tuple[str, str | None, str | None]]:
    with world.runtime.sessions() as session:
        rows = session.execute(
            sa.select(RunMember.profile_key, RunMember.email, RunMember.outcome, RunMember.message).where(
                RunMember.run_id == run.id
            )
        ).all()
    return {
        key: (email, outcome.value if outcome else None, message) for key, email, outcome, message in rows
    }


@ON_SQLITE  # the snapshot's rules do not depend on the store; PostgreSQL runs the file test
@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_bad_profile_ends_in_the_right_outcome_and_nothing_valid_is_lost(
    world: World, platform: str
) -> None:
    cases = [case for case in CASES if case.only in (None, platform)]
    write_corpus(world, cases)
    run, _ = drive(world.runtime, start_run(world, make_export(world, platform)))
    assert run.status.value in ("succeeded", "succeeded_with_rejections"), run.error
    counts_add_up(run)
    rows = outcomes(world, run)
    assert len(rows) == len(cases) + ORDINARY
    wrong = []
    for case in cases:
        key = case.key.replace("\x00", "")  # NUL bytes cannot be stored (PostgreSQL text)
        _, outcome, message = rows[key]
        want, reason = case.expected(platform)
        if outcome != want or (reason is not None and reason not in (message or "")):
            wrong.append(
                f"{key[:12]} {case.email!r:.40}: {outcome} {message!r:.90}, expected {want} {reason!r}"
            )
        if outcome in ("invalid", "rejected"):
            assert message, f"{key}: {outcome} without a reason"
    assert not wrong, "\n".join(wrong)
    delivered = {email for email, outcome, _ in rows.values() if outcome in ("new", "updated")}
    assert {f"ordinary{i}@example.com" for i in range(1, ORDINARY + 1)} <= delivered
    assert platform_list(world, platform) == delivered  # reported delivered ⇔ on the list
    names = platform_names(world, platform)
    assert names["unicode.names@example.com"].startswith("Żaneta 😀 Ω")
    assert names["nul.name@example.com"].startswith("Anna")


def platform_names(world: World, platform: str) -> dict[str, str]:
    if platform == CM:
        rows = httpx.get(f"{list_url(world, platform)}/subscribers", timeout=60).json()
        return {row["EmailAddress"].lower(): row["Name"] for row in rows}
    rows = httpx.get(f"{list_url(world, platform)}/members", timeout=60).json()["members"]
    return {row["email"]: row["first_name"] or "" for row in rows}


@ON_SQLITE
def test_an_address_constant_contact_refuses_silently_is_not_reported_delivered(world: World) -> None:
    cases = [Case("c1", "user@example.c0m", ("rejected", None)), Case("c2", "user@bücher.de", NEW)]
    write_corpus(world, cases)
    run, _ = drive(world.runtime, start_run(world, make_export(world, CC)))
    counts_add_up(run)
    rows = outcomes(world, run)
    delivered = {email for email, outcome, _ in rows.values() if outcome in ("new", "updated")}
    assert platform_list(world, CC) == delivered
    assert rows["c1"][1] == "rejected"
