"""The import graph of ``src/segmentsync``: layers that do not loop back.

Read from the source (no import is executed): a module that imports another which imports it
back, directly or around a circle, fails here, as does a destination that imports the export
domain. The platform emulators (``sandbox/``) are held to the same rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_names() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports() -> dict[str, set[str]]:
    """Each module's imports of other modules of ours (type-checking-only imports included)."""
    modules = module_names()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                # `from package import module` imports the module, else the package's name
                targets = [
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                    for alias in node.names
                ]
            else:
                continue
            graph[name] |= {target for target in targets if target in modules and target != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_around_a_circle() -> None:
    graph = imports()
    assert circles(graph) == []


def test_the_destinations_know_nothing_of_exports_and_runs() -> None:
    crossing = {
        f"{name} → {target}"
        for name, targets in imports().items()
        if name.startswith("segmentsync.destinations")
        for target in targets
        if target.startswith(("segmentsync.exports", "segmentsync.engine"))
    }
    assert crossing == set()


def test_the_run_engine_imports_at_the_top_of_its_modules() -> None:
    inside = [
        f"{path.name}:{node.lineno}"
        for path in SRC.joinpath("segmentsync", "engine").glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom) and node.col_offset > 0
    ]
    assert inside == []


def test_imports_inside_functions_say_what_they_save() -> None:
    """Outside the run engine (above: none at all), an import inside a function is either moved
    to the top of its module or carries, on its line or the line above, a ``lazy:`` comment with
    the measured start-up cost it saves (or why the module may be missing)."""
    unmarked = []
    for path in sorted(SRC.joinpath("segmentsync").rglob("*.py")):
        lines = path.read_text().splitlines()
        for function in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    said = lines[node.lineno - 1] + lines[node.lineno - 2]
                    if "# lazy:" not in said:
                        unmarked.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert unmarked == []
