"""Shared by the benchmark scripts: print a table and write it into docs/benchmarks.md.

Each script owns one section of docs/benchmarks.md, between ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->``; running it replaces that section and leaves the others alone.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def publish(
    name: str, title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], notes: str = ""
) -> None:
    """Print the table and replace this benchmark's section of docs/benchmarks.md."""
    table = Table(title=title)
    for header in headers:
        table.add_column(str(header))
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    Console().print(table)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = f"### {title}\n\nMeasured {stamp} on {machine()}.\n\n{markdown_table(headers, rows)}\n"
    if notes:
        body += f"\n{notes.strip()}\n"
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    section = f"{start}\n{body}{end}"
    text = (
        DOC.read_text()
        if DOC.exists()
        else "# Benchmarks\n\nFigures written by the scripts in `benchmarks/`.\n"
    )
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _m: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)
