"""Benchmark 2: the Campaign Monitor export of 1,000,000 profiles again, unchanged and with 1 % changed.

Issue 8: with nothing changed, ≤ 8 s and zero upsert calls; with 1 % of the profiles changed
(an UPDATE in DuckDB), ≤ 10 s, and only those sent. The first, full run is measured too (it is
benchmark 1 without the floor). Each run is ``segmentsync exports run NAME --wait`` in its own
process; SQLite by default, ``--store postgresql`` for PostgreSQL.

    .venv/bin/python -m benchmarks.bench_rerun [--rows 1000000] [--store sqlite|postgresql]
        [--no-publish] [--py-spy PATH --profile-dir DIR]
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks import measure
from benchmarks.measure import ExportRun
from benchmarks.world import Target, World, build, cm_connection, cm_export, metadata_store
from segmentsync.exports.models import Delivered
from segmentsync.sandbox.launcher import Sandbox

UNCHANGED_TARGET_SECONDS = 8.0
CHANGED_TARGET_SECONDS = 10.0
EVERY = 100  # profiles whose id is a multiple of this are changed: 1 %
CHANGE_SQL = f"UPDATE profiles SET first_name = first_name || ' Jr' WHERE profile_id % {EVERY} = 0"


def delivered_changed(world: World, target: Target) -> int:
    """Delivered members whose kept profile was changed: exactly the ones to send again."""
    with world.runtime.readers() as session:
        found = session.scalar(
            sa.select(sa.func.count())
            .select_from(Delivered)
            .where(
                Delivered.export_id == target.export_id,
                sa.cast(Delivered.profile_key, sa.BigInteger) % EVERY == 0,
            )
        )
    return int(found or 0)


def measure_all(args: Any, folder: Path) -> dict[str, Any]:
    spy = measure.py_spy_path(args.py_spy)

    def profile(name: str) -> Path | None:
        return args.profile_dir / f"rerun_{name}_{args.store}.raw.txt" if spy else None

    with Sandbox.start() as sandbox, metadata_store(args.store, folder) as store_url:
        world = build(folder, sandbox, rows=args.rows, store_url=store_url)
        try:
            target = cm_export(world, cm_connection(world), "CM export")
            runs = {"first": measure.run_export(world, target, "campaign_monitor")}
            runs["unchanged"] = measure.run_export(
                world, target, "campaign_monitor", py_spy=spy, profile=profile("unchanged")
            )
            world.change_profiles(CHANGE_SQL)
            expected = delivered_changed(world, target)
            runs["changed"] = measure.run_export(
                world, target, "campaign_monitor", py_spy=spy, profile=profile("changed")
            )
        finally:
            world.close()
    return {"runs": runs, "expected_changed": expected}


def results(args: Any, found: dict[str, Any]) -> dict[str, Any]:
    runs: dict[str, ExportRun] = found["runs"]
    unchanged, changed, expected = runs["unchanged"], runs["changed"], found["expected_changed"]
    return {
        "rows": args.rows,
        "store": args.store,
        "expected_changed": expected,
        "runs": {
            name: {
                "seconds": run.process.seconds,
                "cpu_seconds": run.process.cpu_seconds,
                "rss_mb": run.process.peak_rss_mb,
                "run": run.run,
                "calls": run.calls,
                "phases": measure.phases_json(run.phases),
            }
            for name, run in runs.items()
        },
        "checks": {
            "unchanged_sends_nothing": unchanged.upsert_calls == 0 and unchanged.run["rows_sent"] == 0,
            "unchanged_counts_everyone": unchanged.run["unchanged"] == runs["first"].run["new"],
            "changed_sends_only_those": changed.run["updated"] == changed.run["rows_sent"] == expected > 0,
            "changed_calls": changed.upsert_calls == -(-expected // 1000),
        },
        "targets": {
            "unchanged": unchanged.process.seconds <= UNCHANGED_TARGET_SECONDS,
            "changed": changed.process.seconds <= CHANGED_TARGET_SECONDS,
        },
    }


def table(found: dict[str, Any]) -> list[list[object]]:
    runs: dict[str, ExportRun] = found["runs"]
    labels = {
        "first": ("first, full run", "—"),
        "unchanged": ("again, nothing changed", f"≤ {UNCHANGED_TARGET_SECONDS:.0f} s, no upsert"),
        "changed": (
            f"again, 1 % changed ({found['expected_changed']:,} members)",
            f"≤ {CHANGED_TARGET_SECONDS:.0f} s",
        ),
    }
    rows: list[list[object]] = []
    for name, run in runs.items():
        label, target = labels[name]
        rows.append(
            [
                label, f"{run.process.seconds:.1f} s", f"{run.run['rows_sent']:,}",
                f"{run.run['unchanged']:,}", f"{run.upsert_calls:,} ({run.calls.get('total', 0):,} in all)",
                f"{run.process.peak_rss_mb:,.0f} MB", f"{run.process.cpu_seconds:.1f} s",
                measure.phases_text(run.phases), target,
            ]
        )  # fmt: skip
    return rows


def notes(summary: dict[str, Any]) -> str:
    checks, targets = summary["checks"], summary["targets"]
    unchanged, changed = summary["runs"]["unchanged"]["seconds"], summary["runs"]["changed"]["seconds"]
    return "\n".join(
        [
            f"{summary['rows']:,} generated profiles, one segment holding all of them (e-mail, Name and City sent); "
            f"metadata store: {summary['store']}. The 1 % change is `{CHANGE_SQL}`.",
            "",
            f"- unchanged re-run: {measure.verdict(targets['unchanged'], f'{unchanged:.1f} s')}; "
            f"no upsert call: {'yes' if checks['unchanged_sends_nothing'] else 'NO'}",
            f"- 1 % changed: {measure.verdict(targets['changed'], f'{changed:.1f} s')}; "
            f"only those sent ({summary['expected_changed']:,} delivered members whose profile changed): "
            f"{'yes' if checks['changed_sends_only_those'] else 'NO'}",
            "",
            "Phases in seconds, seen from outside (±0.05 s); *start-up* is Python start-up, imports and "
            f"claiming the run. {measure.load_note()}",
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = measure.arguments(__doc__, rows=1_000_000).parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-rerun-") as folder:
        found = measure_all(args, Path(folder))
    summary = results(args, found)
    headers = [
        "run",
        "wall",
        "rows sent",
        "unchanged",
        "import calls",
        "peak RSS",
        "CPU",
        "phases: wall (CPU, peak RSS)",
        "target",
    ]
    title = f"Campaign Monitor: re-running the export of {args.rows:,} profiles ({args.store})"
    measure.report(
        f"rerun_{args.store}", title, headers, table(found), notes(summary), to_doc=not args.no_publish
    )
    measure.write_json(args.json, summary)
    return summary


if __name__ == "__main__":
    main()
