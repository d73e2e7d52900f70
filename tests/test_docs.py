"""The docs keep up with the code: the files and modules they name exist, the figures they quote
are the code's, and nothing points to files outside the repository.

A renamed or moved module, a constant changed without its doc, or a "see SPEC" left in a
docstring fails here (the policy table has its own check: ``tests/api/test_rbac.py``).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from segmentsync.destinations.base import Limits
from segmentsync.destinations.campaign_monitor import CampaignMonitor
from segmentsync.destinations.constant_contact import ConstantContact
from segmentsync.engine import checkpoint, overlap, plan, send, workspace

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([*ROOT.joinpath("docs").glob("*.md"), ROOT / "README.md"])
SEARCHED = ("", "src", "src/segmentsync", "tests", "benchmarks")
PATH = re.compile(r"`((?:[\w.-]+/)*[\w.-]+\.py)(?:::(\w+))?`")
MODULE = re.compile(r"`(segmentsync(?:\.\w+)+)")
OUTSIDE = re.compile(r"SPEC\s*§|DESIGN(?:\.md)?\b")


def files_named(name: str) -> list[Path]:
    if "/" in name:
        return [ROOT / base / name for base in SEARCHED if (ROOT / base / name).is_file()]
    return [p for base in ("src", "tests", "benchmarks") for p in ROOT.joinpath(base).rglob(name)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_the_files_a_doc_names_exist(doc: Path) -> None:
    missing = []
    for name, member in PATH.findall(doc.read_text()):
        found = files_named(name)
        if not found:
            missing.append(name)
        elif member and not any(re.search(rf"^(def|class) {member}\b", f.read_text(), re.M) for f in found):
            missing.append(f"{name}::{member}")
    assert not missing, f"{doc.name} names what is not in the repository: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_the_modules_a_doc_names_exist(doc: Path) -> None:
    missing = []
    for dotted in set(MODULE.findall(doc.read_text())):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable prefix, then its attributes
            try:
                found: object = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attribute in parts[cut:]:
                found = getattr(found, attribute, None)
            if found is None:
                missing.append(dotted)
            break
    assert not missing, f"{doc.name} names what segmentsync does not have: {missing}"


def test_no_source_points_to_files_outside_the_repository() -> None:
    sources = [
        *ROOT.joinpath("src").rglob("*.py"),
        *(p for p in ROOT.joinpath("tests").rglob("*.py") if p != Path(__file__).resolve()),
        *ROOT.joinpath("benchmarks").rglob("*.py"),
        *DOCS,
        ROOT / "pyproject.toml",
    ]
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in sources
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, f"these point to files that are not in the repository: {found}"


def limits_row(limits: Limits) -> list[str]:
    def number(value: object) -> str:
        return "none" if value is None else f"{value:,}"

    return [
        number(limits.max_batch_rows),
        number(limits.max_batch_bytes),
        number(limits.concurrency),
        number(limits.max_concurrency),
    ]


def test_the_destinations_limits_table_is_the_code() -> None:
    text = ROOT.joinpath("docs", "destinations.md").read_text()
    rows = {}
    for key in ("max_batch_rows", "max_batch_bytes", "concurrency", "max_concurrency"):
        match = re.search(rf"^\| `{key}` \| ([^|]+) \| ([^|]+) \|", text, re.M)
        assert match, f"docs/destinations.md: no row for {key}"
        rows[key] = [cell.strip().split(" ")[0] for cell in match.groups()]
    documented = [[rows[key][column] for key in rows] for column in (0, 1)]
    assert documented == [limits_row(CampaignMonitor.limits), limits_row(ConstantContact.limits)]


def test_the_run_engine_figures_in_the_architecture_are_the_code() -> None:
    text = " ".join(ROOT.joinpath("docs", "architecture.md").read_text().split())
    quoted = {
        f"At most {checkpoint.RECORD_BACKLOG} acknowledged batches wait for their checkpoint": "checkpoint.RECORD_BACKLOG",
        f"At most {send.Feed().max_chunks} chunks wait for the sender": "send.Feed max_chunks",
        f"{plan.CHUNK_ROWS:,} rows a chunk": "plan.CHUNK_ROWS",
        f"`SENDING_MEMORY_LIMIT`, {workspace.SENDING_MEMORY_LIMIT}": "workspace.SENDING_MEMORY_LIMIT",
        f"default {workspace.MEMORY_LIMIT}": "workspace.MEMORY_LIMIT",
        f"at least {overlap.OVERLAP_SHARE:.0%} of the snapshot is to be sent": "overlap.OVERLAP_SHARE",
        f"{CampaignMonitor.limits.concurrency} → {CampaignMonitor.limits.max_concurrency} for Campaign Monitor": "CampaignMonitor.limits",
    }
    stale = [name for sentence, name in quoted.items() if sentence not in text]
    assert not stale, f"docs/architecture.md does not quote these as the code has them: {stale}"
