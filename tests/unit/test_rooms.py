"""The walls of the journal's and the job worker's rooms, read from the source: what each may import, and no import
circle among their modules (docs/ARCHITECTURE.md draws the levels)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "server" / "seedance_mcp"


def module_imports(path: Path) -> set[str]:
    """The seedance_mcp modules `path` imports when it is imported (not under TYPE_CHECKING, not inside functions)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for inner in ast.walk(node):
            if (
                isinstance(inner, ast.ImportFrom)
                and inner.level == 0
                and (inner.module or "").startswith("seedance_mcp")
            ):
                module = inner.module or ""
                found |= {f"{module}.{alias.name}" for alias in inner.names} | {module}
            elif isinstance(inner, ast.Import):
                found |= {alias.name for alias in inner.names if alias.name.startswith("seedance_mcp")}
    return found


def name_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(prefix: str) -> dict[str, set[str]]:
    """Each module of a room (`seedance_mcp.jobs`) with the modules of the package it imports."""
    modules = {name_of(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if name == prefix or name.startswith(prefix + "."):
            graph[name] = {m for m in module_imports(path) if m in modules and m != name}
    return graph


@pytest.mark.parametrize("prefix", ["seedance_mcp.journal", "seedance_mcp.jobs"])
def test_a_room_has_no_import_circle(prefix: str) -> None:
    graph = room(prefix)
    inside = {
        name: {m for m in imports if m in graph and not name.startswith(m + ".")} for name, imports in graph.items()
    }
    try:
        tuple(TopologicalSorter(inside).static_order())
    except CycleError as exc:
        raise AssertionError(f"import circle in {prefix}: {' -> '.join(exc.args[1])}") from None


def test_the_journal_knows_nothing_of_the_worker_the_providers_or_the_tools() -> None:
    allowed = {"seedance_mcp.errors", "seedance_mcp.models"}
    for name, imports in room("seedance_mcp.journal").items():
        outside = {m for m in imports if not m.startswith("seedance_mcp.journal")} - allowed
        assert not outside, f"{name} imports {sorted(outside)}"


def test_the_worker_knows_nothing_of_mcp_the_tools_or_the_sandbox() -> None:
    walls = (
        "seedance_mcp.tools",
        "seedance_mcp.app",
        "seedance_mcp.runtime",
        "seedance_mcp.http_server",
        "seedance_mcp.sandbox",
        "mcp",
    )
    for name, path in ((name, PACKAGE.parent / (name.replace(".", "/"))) for name in room("seedance_mcp.jobs")):
        source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        tree = ast.parse(source.read_text(encoding="utf-8"))
        imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        crossing = {m for m in imported if any(m == wall or m.startswith(wall + ".") for wall in walls)}
        assert not crossing, f"{name} imports {sorted(crossing)}"
