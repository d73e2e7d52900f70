"""Benchmark 4: our export beside a plain loop over the official ``createsend`` client.

Issue 8: the same 100,000 profiles, with 100 ms of sandbox latency on every API request
(``cm_faults(latency_ms=100)``): the loop (``benchmarks/createsend_loop.py``: batches of 1,000,
one call at a time) and our export (``segmentsync exports run NAME --wait``), each in its own
process. Target: ours ≥ 5× faster; and the unchanged re-run makes no API call at all.

Our export is timed twice: as a command (``exports run --wait``: Python start-up and imports
included, ≈ 1 s of it), and as production runs it, by a ``segmentsync serve`` already up ("Run
now" through the API; its worker hears the run queued at once), on a second export of the same
segment to a list of its own. The speed-up is reported for both; the target is checked on each.

    .venv/bin/python -m benchmarks.bench_vs_createsend [--rows 100000] [--latency-ms 100] [--no-publish]
        [--py-spy PATH --profile-dir DIR]
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks import measure
from benchmarks.measure import ExportRun, Process, ServedRun
from benchmarks.world import build, cm_connection, cm_export, metadata_store
from segmentsync.sandbox.launcher import Sandbox

TARGET_SPEED_UP = 5.0


def measure_all(args: Any, folder: Path) -> dict[str, Any]:
    with Sandbox.start() as sandbox, metadata_store("sqlite", folder) as store_url:
        world = build(folder, sandbox, rows=args.rows, store_url=store_url)
        try:
            connection = cm_connection(world)
            target = cm_export(world, connection, "CM export")
            sandbox.cm_faults(latency_ms=args.latency_ms)  # from here on: set-up is done
            loop, sent = measure.run_loop(
                world, "benchmarks.createsend_loop", connection[1], "createsend list"
            )
            profile = args.profile_dir / "vs_createsend.raw.txt" if args.py_spy else None
            first = measure.run_export(
                world, target, "campaign_monitor", py_spy=measure.py_spy_path(args.py_spy), profile=profile
            )
            again = measure.run_export(world, target, "campaign_monitor")
            served = measure.run_served(
                world, cm_export(world, connection, "CM export, served"), "campaign_monitor"
            )
        finally:
            world.close()
    return {"loop": loop, "sent": sent, "first": first, "again": again, "served": served}


def results(args: Any, found: dict[str, Any]) -> dict[str, Any]:
    loop: Process = found["loop"]
    first: ExportRun = found["first"]
    again: ExportRun = found["again"]
    served: ServedRun = found["served"]
    speed_up = loop.seconds / first.process.seconds
    speed_up_served = loop.seconds / served.seconds
    loop_inside, run_inside = found["sent"].get("seconds"), first.run.get("seconds")
    inside = loop_inside / run_inside if loop_inside and run_inside else None
    return {
        "rows": args.rows,
        "latency_ms": args.latency_ms,
        "createsend_seconds": loop.seconds,
        "createsend_rows": found["sent"]["rows"],
        "export_seconds": first.process.seconds,
        "rerun_seconds": again.process.seconds,
        "speed_up": speed_up,
        "served_seconds": served.seconds,
        "speed_up_served": speed_up_served,
        "loop_inside_seconds": loop_inside,
        "run_inside_seconds": run_inside,
        "speed_up_inside": inside,
        "rerun_calls": again.calls.get("total", 0),
        "phases": measure.phases_json(first.phases),
        "phases_text": measure.phases_text(first.phases),
        "checks": {
            "delivered_every_valid_member": first.run["new"] == first.run["rows_sent"] > 0,
            "rerun_makes_no_call": again.calls.get("total", 0) == 0,
            "served_delivered_every_valid_member": served.run["new"] == first.run["new"],
        },
        "targets": {
            "speed_up": speed_up >= TARGET_SPEED_UP,
            "speed_up_served": speed_up_served >= TARGET_SPEED_UP,
        },
    }


def table(found: dict[str, Any]) -> list[list[object]]:
    loop: Process = found["loop"]
    sent: dict[str, Any] = found["sent"]
    rows: list[list[object]] = [
        [
            "`createsend` loop, 1,000 per call, one at a time", f"{loop.seconds:.1f} s", f"{sent['rows']:,}",
            f"{sent['import_calls']:,}", f"{sent['all_calls']:,}", f"{loop.peak_rss_mb:,.0f} MB", f"{loop.cpu_seconds:.1f} s",
        ]
    ]  # fmt: skip
    for label, name in (
        ("our export (`exports run --wait`)", "first"),
        ("the same again, nothing changed", "again"),
    ):
        export: ExportRun = found[name]
        rows.append(
            [
                label, f"{export.process.seconds:.1f} s", f"{export.run['rows_sent']:,}", f"{export.upsert_calls:,}",
                f"{export.calls.get('total', 0):,}", f"{export.process.peak_rss_mb:,.0f} MB",
                f"{export.process.cpu_seconds:.1f} s",
            ]
        )  # fmt: skip
    served: ServedRun = found["served"]
    rows.append(
        [
            "our export by a running `segmentsync serve` (API call → run ended)", f"{served.seconds:.1f} s",
            f"{served.run['rows_sent']:,}", f"{served.calls.get(measure.CM_IMPORT, 0):,}",
            f"{served.calls.get('total', 0):,}", f"{served.peak_rss_mb:,.0f} MB", f"{served.cpu_seconds:.1f} s",
        ]
    )  # fmt: skip
    return rows


def notes(summary: dict[str, Any]) -> str:
    speed_up, speed_up_served = summary["speed_up"], summary["speed_up_served"]
    return "\n".join(
        [
            f"{summary['rows']:,} generated profiles; every API request waits {summary['latency_ms']:.0f} ms in the "
            "sandbox (a far-away platform). Both send e-mail, Name and City; the loop does not remove duplicates.",
            "",
            f"- ours ≥ {TARGET_SPEED_UP:.0f}× faster, as a command (whole processes): "
            f"{measure.verdict(summary['targets']['speed_up'], f'{speed_up:.1f}×')}",
            f"- ours ≥ {TARGET_SPEED_UP:.0f}× faster, run by a `segmentsync serve` already up (the loop's whole "
            f"process against the time from our API call to the run's end): "
            f"{measure.verdict(summary['targets']['speed_up_served'], f'{speed_up_served:.1f}×')}",
            *(
                [
                    f"- without process start-up (the loop timed after its imports; our run from claim to "
                    f"finish, as a worker that is already running spends it): {summary['loop_inside_seconds']:.1f} s "
                    f"vs {summary['run_inside_seconds']:.1f} s, {summary['speed_up_inside']:.1f}×"
                ]
                if summary["speed_up_inside"]
                else []
            ),
            f"- the unchanged re-run made {summary['rerun_calls']} API calls "
            f"({'none, as it should' if summary['checks']['rerun_makes_no_call'] else 'it should make none'})",
            f"- phases of our first run, seconds: {summary['phases_text']}",
            "",
            "Wall times are of whole processes, Python start-up included, but the served run's: from the API "
            "call to the run's end as the store shows it (read every 10 ms), in a `serve` process started before "
            f"(its peak RSS includes the web app). {measure.load_note()}",
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = measure.arguments(__doc__, rows=100_000, store=False)
    parser.add_argument("--latency-ms", type=float, default=100.0, help="added to every API request")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-vs-createsend-") as folder:
        found = measure_all(args, Path(folder))
    summary = results(args, found)
    headers = ["process", "wall", "rows sent", "import calls", "all calls", "peak RSS", "CPU"]
    title = f"Our export vs. a `createsend` loop: {args.rows:,} profiles, {args.latency_ms:.0f} ms latency"
    measure.report("vs_createsend", title, headers, table(found), notes(summary), to_doc=not args.no_publish)
    measure.write_json(args.json, summary)
    return summary


if __name__ == "__main__":
    main()
