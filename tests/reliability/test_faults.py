"""A run under a hostile network: 10 % 5xx, 5 % 429, 2 % dropped connections, 1 % stalls past
the timeout. The run succeeds, the platform's list is the segment exactly, nobody is received
more than twice (a batch whose answer was lost is sent again, once), and the counts add up.

The faults are seeded: with seed 715 the third, 143rd and 212th request of each emulator lose
their answer after being processed, and no two such losses are within 60 requests of each other,
so no batch can lose its answer twice in a row (which would be a third, legitimate, delivery).
"""

from __future__ import annotations

import pytest

from exports.world import World, faults

from .scenario import (
    ON_SQLITE,
    PLATFORMS,
    count_received,
    counts_add_up,
    drive,
    make_export,
    platform_list,
    profile_emails,
    received,
    start_run,
    write_profiles,
)

HOSTILE = {
    "error_rate": 0.10,
    "throttle_rate": 0.05,
    "drop_rate": 0.02,
    "stall_rate": 0.01,
    "stall_seconds": 6,  # past the 5 s read timeout of the FAST tuning
    "seed": 715,
}
CC_BATCH_ROWS = 10_000  # Constant Contact takes 40,000 a call: smaller batches meet more faults


def _faulty_export(world: World, platform: str, profiles: int) -> None:
    write_profiles(world.runtime, profiles)
    if platform == "constant_contact":
        world.runtime.settings.max_batch_rows = CC_BATCH_ROWS
    export_id = make_export(world, platform)
    count_received(world, platform)
    faults(world, platform, **HOSTILE)
    run_id = start_run(world, export_id)
    run, attempts = drive(world.runtime, run_id)
    injected = faults(world, platform)["injected"]
    assert run.status.value == "succeeded", (run.error, attempts, injected)
    assert platform_list(world, platform) == profile_emails(world.runtime)
    counts_add_up(run)
    # A batch whose answer was lost is sent again, and the platform then calls its members
    # existing: they count as updated (docs/reliability.md). Nobody is lost or invalid.
    assert (run.profiles, run.new + run.updated, run.invalid) == (profiles, profiles, 0)
    seen = received(world, platform)
    assert seen.addresses == profiles
    assert seen.most_times <= 2, (seen.most, injected)
    assert sum(injected.values()) > 0, "no fault was injected"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_run_through_faults_delivers_the_segment_exactly(world: World, platform: str) -> None:
    _faulty_export(world, platform, 20_000)


@pytest.mark.slow
@ON_SQLITE  # the embedded default; the 20,000-profile version runs on both stores
@pytest.mark.parametrize("platform", PLATFORMS)
def test_200k_profiles_through_faults(world: World, platform: str) -> None:
    _faulty_export(world, platform, 200_000)
