"""The walls between the package's rooms (docs/ARCHITECTURE.md), enforced by reading the imports of its source: the
provider layer knows no MCP, the catalog is data, production code never imports the sandbox, only the entry point
reads the environment, no import runs in a circle, and no private attribute of the MCP SDK is touched."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from mcp.server import MCPServer

PACKAGE = Path(__file__).resolve().parents[2] / "server" / "seedance_mcp"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


@cache
def tree_of(name: str) -> ast.Module:
    return ast.parse(modules()[name].read_text(encoding="utf-8"))


def imported(name: str, *, type_checking: bool = False) -> set[str]:
    """Every module `name` imports, at the top or inside a function (which is an import all the same), resolved
    to a module of this package where it names one (`from seedance_mcp.x import y` is `seedance_mcp.x.y` when y
    is a module). Imports for type checkers only are left out unless asked for."""
    tree = tree_of(name)
    skipped: set[int] = set()
    if not type_checking:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped.update(id(inner) for inner in ast.walk(node))
    package = name if modules()[name].name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base)
    return found


def internal_imports(name: str) -> set[str]:
    return {other for other in imported(name) if other in modules() and other != name}


def reachable_from(names: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(internal_imports(name))
    return seen


def in_room(room: str) -> set[str]:
    return {name for name in modules() if name == room or name.startswith(room + ".")}


def test_the_walls_see_the_package() -> None:
    """The readers find the rooms (a wrong path would make every wall below pass vacuously)."""
    assert {"seedance_mcp.providers.client", "seedance_mcp.sandbox.app", "seedance_mcp.requests"} <= set(modules())
    assert "seedance_mcp.providers.dialects.ark" in internal_imports("seedance_mcp.providers")
    assert "seedance_mcp.sandbox.state" in internal_imports("seedance_mcp.runtime")  # inside a function


def test_the_provider_layer_knows_no_mcp() -> None:
    """Nothing the providers import, directly or through other modules, imports the MCP SDK or the tools."""
    reached = reachable_from(in_room("seedance_mcp.providers"))
    speaking_mcp = sorted(
        name for name in reached if any(other == "mcp" or other.startswith("mcp.") for other in imported(name))
    )
    assert speaking_mcp == []
    assert not reached & (in_room("seedance_mcp.tools") | {"seedance_mcp.app", "seedance_mcp.runtime"})


def test_the_catalog_is_data() -> None:
    """The catalog and its loader import nothing of the package but each other: no I/O layer, no tools, no MCP."""
    catalog = {"seedance_mcp.catalog", "seedance_mcp.catalog_loader"}
    for name in catalog:
        assert internal_imports(name) <= catalog, name
        assert not any(other.split(".")[0] in ("mcp", "httpx", "anyio", "pydantic") for other in imported(name))


SANDBOX_STARTERS = {
    "seedance_mcp.runtime": "starts the embedded sandbox for SEEDANCE_PROVIDER=sandbox",
    "seedance_mcp.cli": "`seedance-mcp sandbox` starts a standalone one",
    "seedance_mcp.demo": "`seedance-mcp demo` describes the clip the sandbox serves",
}


def test_production_code_never_imports_the_sandbox() -> None:
    """The sandbox is test infrastructure the product embeds: outside sandbox/, only what starts it imports it."""
    sandbox = in_room("seedance_mcp.sandbox")
    importers = {
        name
        for name in set(modules()) - sandbox
        if any(other in sandbox for other in imported(name, type_checking=True))
    }
    assert importers == set(SANDBOX_STARTERS)


def environment_reads(name: str) -> Iterator[tuple[str, int]]:
    """(the enclosing function, line) of every read of os.environ / os.getenv in a module."""
    tree = tree_of(name)
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute | ast.ImportFrom):
            continue
        reads = (isinstance(node, ast.Attribute) and node.attr in ("environ", "environb", "getenv", "putenv")) or (
            isinstance(node, ast.ImportFrom) and node.module == "os" and any(a.name == "environ" for a in node.names)
        )
        if reads:
            inside = [f for f in functions if f.lineno <= node.lineno <= (f.end_lineno or f.lineno)]
            yield (inside[-1].name if inside else "<module>"), node.lineno


ENTRY_POINTS = {"seedance_mcp.cli", "seedance_mcp.demo"}
"""The command line: `demo` also hands the user's environment to the server it starts."""


def test_only_the_entry_point_reads_the_environment() -> None:
    """Configuration is read once at the edge (`config.load_settings`, called by the command line) and passed in
    as Settings; nothing else looks at os.environ."""
    reads = {(name, function) for name in modules() for function, _ in environment_reads(name)}
    outside = {(name, function) for name, function in reads if name not in ENTRY_POINTS}
    assert outside == {("seedance_mcp.config", "load_settings")}
    assert any(name == "seedance_mcp.cli" for name, _ in reads)


KNOWN_CIRCLES = [{"seedance_mcp.catalog", "seedance_mcp.catalog_loader"}]
"""catalog.builtin_catalog() (behind the PRESETS view) loads through catalog_loader, which builds catalog's types:
left for whoever splits the catalog's types from its data; any other circle fails."""


def import_circles() -> list[set[str]]:
    """The strongly connected groups of more than one module in the import graph (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[set[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        for other in internal_imports(name):
            if other not in index:
                visit(other)
                low[name] = min(low[name], low[other])
            elif other in stack:
                low[name] = min(low[name], index[other])
        if low[name] == index[name]:
            group: set[str] = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == name:
                    break
            if len(group) > 1:
                circles.append(group)

    for name in modules():
        if name not in index:
            visit(name)
    return circles


def test_no_import_runs_in_a_circle() -> None:
    """Imports run one way, down the layers (function-level imports count: they are imports all the same)."""
    assert import_circles() == KNOWN_CIRCLES


@pytest.mark.parametrize("room", ["seedance_mcp.app", "seedance_mcp.tools", "seedance_mcp.http_server"])
def test_no_private_attribute_of_the_mcp_sdk_is_touched(room: str) -> None:
    """MCPServer's own state (its tool manager, low-level server, …) is reached only through public methods, so an
    SDK release that moves it cannot silently break the server."""
    private = {name for name in vars(MCPServer("probe")) if name.startswith("_") and not name.startswith("__")}
    assert {"_tool_manager", "_lowlevel_server"} <= private
    touched = {
        (name, node.attr, node.lineno)
        for name in in_room(room)
        for node in ast.walk(tree_of(name))
        if isinstance(node, ast.Attribute) and node.attr in private and ast.unparse(node.value) != "self"
    }
    assert touched == set()
