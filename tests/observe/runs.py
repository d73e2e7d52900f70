"""A real export run for the observability tests: created, queued, executed by a worker."""

from __future__ import annotations

from typing import Any

import httpx

from exports.world import World  # tests/ is on sys.path (rootdir)
from segmentsync.db import transaction
from segmentsync.exports import runs
from segmentsync.exports.models import Export, Run
from segmentsync.scheduling.worker import Worker

PLATFORMS = ["campaign_monitor", "constant_contact"]


def make_export(world: World, platform: str, **changes: Any) -> int:
    base = world.form if platform == "campaign_monitor" else world.cc_form
    values: dict[str, Any] = {
        "segment_ids": [world.segments["PL"], world.segments["LV"]],
        "name": f"{platform} export",
    }
    values.update(changes)
    return world.create(base(**values)).export_id


def queue_run(world: World, export_id: int) -> int:
    actor = world.admin.load(world.runtime)
    with transaction(world.runtime.sessions) as session:
        export = session.get(Export, export_id)
        assert export is not None
        return runs.start_run(session=session, export=export, actor=actor).id


def run_export(world: World, export_id: int, worker: Worker | None = None) -> Run:
    run_id = queue_run(world, export_id)
    assert (worker or Worker(world.runtime)).run_once() == run_id
    with world.runtime.sessions() as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run


def sandbox_requests(world: World, platform: str) -> dict[str, int]:
    """The requests the platform's emulator answered, by its own route template."""
    url = (
        world.sandbox.campaign_monitor_url
        if platform == "campaign_monitor"
        else world.sandbox.constant_contact_url
    )
    return dict(httpx.get(f"{url}/_sandbox/stats", timeout=10).json()["requests"])
