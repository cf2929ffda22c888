"""The package's structure: no import cycles, and the theory stays free of storage and ML.

Imports are read from the source with :mod:`ast` (module-level and function-level alike, since
a deferred import is still a dependency). ``from supercooled import x`` counts as an import of
the module ``supercooled.x`` when that module exists, else of ``supercooled`` itself.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "supercooled"

#: the theory: mode-coupling theory, the memory equation and its solver
THEORY = ("supercooled.mct", "supercooled.memory", "supercooled.schematic", "supercooled.solver")
#: what the theory must not depend on: storage (files, the library, paths) and ML
FORBIDDEN_FOR_THEORY = ("supercooled.library", "supercooled.paths", "supercooled.mct_table",
                        "supercooled.campaign", "supercooled.measure", "supercooled.memory_fits",
                        "supercooled.ml", "torch", "xarray", "pandas", "netCDF4", "h5netcdf")


def _is_within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str) -> str | None:
    """The module of the package that ``name`` is, or its nearest existing parent."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """Every module (inside the package or not) that ``module`` imports."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return found


def internal_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (a parent package's __init__ is not counted
    for its own submodules, which Python imports first but which is not a dependency)."""
    graph = {}
    for module in MODULES:
        targets = {_resolve(name) for name in imports_of(module) if name.startswith("supercooled")}
        graph[module] = {t for t in targets
                         if t and t != module and t != "supercooled" and not module.startswith(t + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(internal_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _is_within(m, THEORY)))
def test_theory_imports_no_storage_and_no_ml(module):
    bad = sorted(name for name in imports_of(module) if _is_within(name, FORBIDDEN_FOR_THEORY))
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _is_within(m, THEORY)))
def test_theory_does_no_file_io(module):
    tree = ast.parse(MODULES[module].read_text())
    calls = [node.func.id for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    assert "open" not in calls, f"{module} opens files"


def test_no_module_is_much_longer_than_500_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 550}
    assert not long, f"modules over 550 lines: {long}"
