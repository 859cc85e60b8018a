"""The package's shape: no import cycles, and each layer imports only the layers below it.

Read from the source (every `import` / `from ... import`, lazy ones inside functions
included), so a cycle hidden behind a function-level import is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "bench"

# Which top-level parts of `bench` each part may import (besides itself).  The data
# flows measure -> record -> analyse -> present; `run` and `cli` drive everything;
# the simulator stands on its own (the harness only starts it as a process).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "simulator": {"core"},
    "calibration": {"core", "simulator"},
    "record": {"core"},
    "analyse": {"core", "record"},
    "present": {"core", "record", "analyse"},
    "measure": {"core", "record", "simulator", "present"},
    "run": {"core", "record", "analyse", "present", "measure", "simulator"},
    "cli": {"core", "present", "run", "simulator"},
    "__init__": set(),
    "__main__": {"cli"},
}
# The root package holds only the version, which any part may read.
for _allowed in ALLOWED.values():
    _allowed.add("__init__")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + (1 if path.name == "__init__.py" else 0)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # `from bench.x import y` may import the module bench.x.y
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "bench" or name.startswith("bench.")}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            # keep only real modules (a name imported from a module is not one)
            while imported not in modules and "." in imported:
                imported = imported.rsplit(".", 1)[0]
            # Importing bench.a.b runs bench.a's __init__ first whatever one writes, so
            # an edge to one's own ancestor package says nothing about the design.
            if imported in modules and imported != name and not name.startswith(imported + "."):
                targets.add(imported)
        graph[name] = targets
    return graph


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_cycles() -> None:
    graph = _graph()
    assert len(graph) > 50  # the walk found the package
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                # a package's __init__ importing its own modules is how re-exports work
                cycle = [*stack[stack.index(nxt) :], nxt]
                if not _reexport_only(cycle):
                    cycles.append(cycle)
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert cycles == []


def _reexport_only(cycle: list[str]) -> bool:
    """A cycle through a package and its own submodule is Python's re-export idiom."""
    return len(set(cycle)) == 2 and any(
        a != b and b.startswith(a + ".") for a in cycle for b in cycle
    )


def test_layers_import_only_downwards() -> None:
    graph = _graph()
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if _part(target) != _part(module) and _part(target) not in ALLOWED[_part(module)]
    )
    assert wrong == []


def test_every_part_is_placed() -> None:
    parts = {_part(m) for m in _graph()}
    assert parts <= set(ALLOWED), parts - set(ALLOWED)
