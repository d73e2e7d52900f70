"""Summarise a py-spy profile of an export (``--py-spy``: raw collapsed stacks, ``--threads``).

Samples whose innermost frame only waits (a pool thread waiting for work, a socket read, a
condition, the CLI's polling sleep) are left out: py-spy's ``--gil`` mode still reports some of
them. The rest is split by what the export was doing, from the frames on the stack, and the
heaviest innermost functions of each part are listed.

    .venv/bin/python -m benchmarks.spy_summary export_cm_sqlite.raw.txt [--top 8]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

WAITING = (
    "_worker (concurrent/futures/thread.py)",
    "Condition.wait (threading.py)",
    "SyncStream.read (httpcore/_backends/sync.py)",
    "is_socket_readable (httpcore/_utils.py)",
    "wait_for_run (segmentsync/exports/terminal.py)",
)
# (part, a frame that marks it), the first match wins
PARTS = (
    ("send: destination rows + HTTP (pool threads)", "_upsert (segmentsync/engine/send.py)"),
    ("send: checkpoint per batch (record)", "record (segmentsync/engine/send.py)"),
    ("send: reading pages (_pending)", "_pending (segmentsync/engine/send.py)"),
    ("send: other", "_drive (segmentsync/engine/send.py)"),
    ("plan", "plan (segmentsync/engine/plan.py)"),
    ("snapshot: writing run_members", "insert_members (segmentsync/engine/plan.py)"),
    ("snapshot: reading rows out of DuckDB", "_chunks (segmentsync/engine/snapshot.py)"),
    ("snapshot: DuckDB row work", "build (segmentsync/engine/snapshot.py)"),
    (
        "snapshot: other (count, stream, segment refresh)",
        "_snapshot_and_plan (segmentsync/engine/run.py)",
    ),
    ("finish", "_finish (segmentsync/engine/run.py)"),
    ("heartbeat", "_heartbeat (segmentsync/scheduling/worker.py)"),
    ("start-up (imports)", "_find_and_load (<frozen importlib._bootstrap>)"),
)


def frames(stack: str) -> list[str]:
    """Function (file) per frame, without the thread and line numbers."""
    return [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")[1:]]


def summarise(path: Path) -> tuple[int, Counter[str], dict[str, Counter[str]]]:
    busy = 0
    parts: Counter[str] = Counter()
    leaves: dict[str, Counter[str]] = defaultdict(Counter)
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        names = frames(stack)
        if not names or names[-1] in WAITING or "sleep" in names[-1]:
            continue
        samples = int(count)
        busy += samples
        part = next((name for name, marker in PARTS if marker in names), "other")
        parts[part] += samples
        leaves[part][names[-1]] += samples
    return busy, parts, leaves


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    busy, parts, leaves = summarise(args.profile)
    print(f"{busy:,} busy samples")
    for part, samples in parts.most_common():
        print(f"\n{part}: {samples:,} ({100 * samples / busy:.1f} %)")
        for leaf, count in leaves[part].most_common(args.top):
            print(f"  {100 * count / busy:5.1f} %  {leaf}")


if __name__ == "__main__":
    main()
