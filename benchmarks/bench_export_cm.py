"""Benchmark 1: a full Campaign Monitor export of 1,000,000 profiles, beside the floor.

Issue 8: no rate limit; the export ≤ 30 s with a peak RSS ≤ 500 MB, and within 3× of the floor,
a bare loop (``benchmarks/floor.py``) that reads the same rows from the same DuckDB file and
posts the same 1,000-row ``import.json`` calls to the same sandbox. Both run as their own
processes against the sandbox in a third; the export is ``segmentsync exports run NAME --wait``
on a fresh data folder (SQLite by default, ``--store postgresql`` for PostgreSQL).

    .venv/bin/python -m benchmarks.bench_export_cm [--rows 1000000] [--store sqlite|postgresql]
        [--no-publish] [--py-spy PATH --profile-dir DIR]
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks import measure
from benchmarks.measure import ExportRun, Process
from benchmarks.world import build, cm_connection, cm_export, metadata_store
from segmentsync.sandbox.launcher import Sandbox

TARGET_SECONDS = 30.0
TARGET_RSS_MB = 500.0
TARGET_RATIO = 3.0


def measure_all(args: Any, folder: Path) -> dict[str, Any]:
    with Sandbox.start() as sandbox, metadata_store(args.store, folder) as store_url:
        world = build(folder, sandbox, rows=args.rows, store_url=store_url)
        try:
            connection = cm_connection(world)
            target = cm_export(world, connection, "CM full export")
            floor, floor_sent = measure.run_loop(world, "benchmarks.floor", connection[1], "Floor list")
            profile = args.profile_dir / f"export_cm_{args.store}.raw.txt" if args.py_spy else None
            export = measure.run_export(
                world, target, "campaign_monitor", py_spy=measure.py_spy_path(args.py_spy), profile=profile
            )
        finally:
            world.close()
    return {"floor": floor, "floor_sent": floor_sent, "export": export}


def table(found: dict[str, Any]) -> list[list[object]]:
    floor: Process = found["floor"]
    sent: dict[str, int] = found["floor_sent"]
    export: ExportRun = found["export"]
    run, process = export.run, export.process
    return [
        [
            "floor: bare loop", f"{floor.seconds:.1f} s", f"{sent['rows'] / floor.seconds:,.0f}",
            f"{sent['rows']:,}", f"{sent['import_calls']:,}", f"{floor.peak_rss_mb:,.0f} MB",
            f"{floor.cpu_seconds:.1f} s",
        ],
        [
            "export (`exports run --wait`)", f"{process.seconds:.1f} s",
            f"{run['rows_sent'] / process.seconds:,.0f}", f"{run['rows_sent']:,}",
            f"{export.upsert_calls:,} ({export.calls['total']:,} in all)", f"{process.peak_rss_mb:,.0f} MB",
            f"{process.cpu_seconds:.1f} s",
        ],
    ]  # fmt: skip


def results(args: Any, found: dict[str, Any]) -> dict[str, Any]:
    floor: Process = found["floor"]
    export: ExportRun = found["export"]
    ratio = export.process.seconds / floor.seconds
    return {
        "rows": args.rows,
        "store": args.store,
        "floor_seconds": floor.seconds,
        "floor_rows": found["floor_sent"]["rows"],
        "export_seconds": export.process.seconds,
        "export_rss_mb": export.process.peak_rss_mb,
        "ratio": ratio,
        "cpu_ratio": export.process.cpu_seconds / floor.cpu_seconds,
        "run": export.run,
        "calls": export.calls,
        "phases": measure.phases_json(export.phases),
        "phases_text": measure.phases_text(export.phases),
        "sandbox_cpu": export.sandbox_cpu,
        "checks": {
            "delivered_every_valid_member": export.run["new"] == export.run["rows_sent"] > 0,
            "one_import_per_1000_rows": export.upsert_calls == -(-export.run["rows_sent"] // 1000),
        },
        "targets": {
            "seconds": export.process.seconds <= TARGET_SECONDS,
            "rss": export.process.peak_rss_mb <= TARGET_RSS_MB,
            "ratio": ratio <= TARGET_RATIO,
        },
    }


def notes(summary: dict[str, Any]) -> str:
    run, targets = summary["run"], summary["targets"]
    seconds, rss, ratio = summary["export_seconds"], summary["export_rss_mb"], summary["ratio"]
    return "\n".join(
        [
            f"{summary['rows']:,} generated profiles, one segment holding all of them; the export sends e-mail, "
            f"Name (first + last name) and the City custom field. Of {run['profiles']:,} members, {run['invalid']:,} "
            f"are invalid (bad syntax, no e-mail, duplicates); {run['rows_sent']:,} were sent in {run['batches']:,} "
            f"batches. Metadata store: {summary['store']}.",
            "",
            f"- export ≤ {TARGET_SECONDS:.0f} s: {measure.verdict(targets['seconds'], f'{seconds:.1f} s')}",
            f"- peak RSS ≤ {TARGET_RSS_MB:.0f} MB: {measure.verdict(targets['rss'], f'{rss:.0f} MB')}",
            f"- within {TARGET_RATIO:.0f}× the floor: {measure.verdict(targets['ratio'], f'{ratio:.2f}×')}; "
            f"CPU time {summary['cpu_ratio']:.2f}× the floor's",
            f"- phases of the export, seconds (seen from outside, ±0.05 s): {summary['phases_text']}",
            f"- CPU of the sandbox process during the export: {summary['sandbox_cpu']:.1f} s",
            "",
            "Wall time and rows/s are of the whole process, Python start-up included; CPU is user + system "
            "time of that process (reaped with `wait4`), peak RSS its high-water mark (`VmHWM`). The floor leaves "
            f"duplicates in, so it sends about 1 % more rows. {measure.load_note()}",
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = measure.arguments(__doc__, rows=1_000_000).parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-export-cm-") as folder:
        found = measure_all(args, Path(folder))
    summary = results(args, found)
    headers = ["process", "wall", "rows/s", "rows sent", "import calls", "peak RSS", "CPU"]
    title = f"Campaign Monitor: full export of {args.rows:,} profiles vs. the floor ({args.store})"
    measure.report(
        f"export_cm_{args.store}", title, headers, table(found), notes(summary), to_doc=not args.no_publish
    )
    measure.write_json(args.json, summary)
    return summary


if __name__ == "__main__":
    main()
