"""The layout keeps the architecture: no import cycle between modules, data flowing one way
(analysis <- matching <- composer <- soundtrack / app.py), no crowded folder, no long function.

The code is read as text with :mod:`ast`; nothing of the project is imported. Every import
counts wherever it stands (inside functions, under ``TYPE_CHECKING``), relative imports
are resolved, and an import of a package's ``__init__`` is not an edge between modules
(importing ``composer.model`` for its ``checkpoint`` module is an edge to the module only).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("analysis", "matching", "composer", "soundtrack")
MAX_MODULES_PER_FOLDER = 12
MAX_FUNCTION_LINES = 100  # the hard line; 80 is the aim

#: Which top-level packages each layer may import (besides itself); the rest of the project is off limits.
MAY_IMPORT: Mapping[str, frozenset[str]] = {
    "analysis": frozenset(),
    "matching": frozenset({"analysis"}),
    "composer": frozenset({"analysis", "matching"}),
    "soundtrack": frozenset({"analysis", "matching", "composer", "app"}),
    "app": frozenset({"analysis", "matching", "composer", "soundtrack"}),
}


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "composer.model.generate"; a package by its own name
    path: Path

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    @property
    def layer(self) -> str:
        return self.name.split(".")[0]


def project_modules(root: Path = ROOT) -> dict[str, Module]:
    files = [f for pkg in PACKAGES for f in sorted((root / pkg).rglob("*.py"))]
    files += [root / "app.py"] if (root / "app.py").is_file() else []
    out = {}
    for f in files:
        parts = list(f.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = Module(".".join(parts), f)
    return out


def imported_names(module: Module, tree: ast.AST) -> Iterator[str]:
    """Every dotted name ``module`` imports, relative imports resolved; for ``from x import y``
    both ``x`` and ``x.y`` (``y`` may be a module or a name inside ``x``)."""
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            yield stem
            yield from (f"{stem}.{alias.name}" for alias in node.names if alias.name != "*")


def resolve(name: str, modules: Mapping[str, Module]) -> Module | None:
    """The project module a dotted name lies in (its longest module prefix), or ``None``."""
    while name:
        if name in modules:
            return modules[name]
        name = name.rpartition(".")[0]
    return None


def import_graph(modules: Mapping[str, Module]) -> dict[str, set[str]]:
    """Module -> the modules it imports (packages' ``__init__`` left out as targets)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module in modules.values():
        for name in imported_names(module, ast.parse(module.path.read_text())):
            target = resolve(name, modules)
            if target is not None and target.name != module.name and not target.is_package:
                graph[module.name].add(target.name)
    return graph


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one node (or a node importing itself), each
    sorted; Tarjan's algorithm, iterative so deep graphs do not hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph.get(nxt, ()))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph.get(node, ()):
                        cycles.append(sorted(component))
    return sorted(cycles)


MODULES = project_modules()


# ---------------------------------------------------------------------- the cycle finder itself


def test_cycle_finder_on_toy_graphs() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]
    assert find_cycles({"a": {"a"}}) == [["a"]]
    ring = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert find_cycles(ring) == [["a", "b", "c"], ["d", "e"]]
    # a diamond is not a cycle; edges to nodes outside the graph are fine
    assert find_cycles({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": {"x"}}) == []
    chain = {f"m{i}": {f"m{i + 1}"} for i in range(5000)}
    chain["m5000"] = {"m0"}
    assert find_cycles(chain) == [sorted(chain)]


def test_graph_reading_on_a_toy_project(tmp_path: Path) -> None:
    files = {
        "analysis/__init__.py": "from analysis.a import f\n",
        "analysis/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub import b\n",
        "analysis/sub/__init__.py": "",
        "analysis/sub/b.py": "def g():\n    from ..a import f\n    import analysis.sub\n",
        "matching/__init__.py": "",
        "matching/c.py": "from analysis import a\nimport analysis\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "composer").mkdir()
    (tmp_path / "soundtrack").mkdir()
    graph = import_graph(project_modules(tmp_path))
    assert graph["analysis.a"] == {"analysis.sub.b"}  # under TYPE_CHECKING, relative
    assert graph["analysis.sub.b"] == {"analysis.a"}  # inside a function, two levels up; the package is no edge
    assert graph["matching.c"] == {"analysis.a"}  # `from package import module` is an edge to the module
    assert graph["analysis"] == {"analysis.a"}
    assert find_cycles(graph) == [["analysis.a", "analysis.sub.b"]]


# ---------------------------------------------------------------------- the project


def test_no_import_cycle_between_modules() -> None:
    assert len(MODULES) > 50  # the project was found
    assert find_cycles(import_graph(MODULES)) == []


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_data_flows_one_way(layer: str) -> None:
    allowed = MAY_IMPORT[layer] | {layer}
    wrong = sorted(
        f"{module.name} imports {target.name}"
        for module in MODULES.values()
        if module.layer == layer
        for name in imported_names(module, ast.parse(module.path.read_text()))
        if (target := resolve(name, MODULES)) is not None and target.layer not in allowed
    )
    assert wrong == []


def test_no_crowded_folder() -> None:
    folders = {m.path.parent for m in MODULES.values() if m.layer != "app"}
    crowded = {
        str(d.relative_to(ROOT)): n
        for d in folders
        if (n := sum(1 for f in d.glob("*.py") if f.name != "__init__.py")) > MAX_MODULES_PER_FOLDER
    }
    assert crowded == {}


def test_no_function_over_the_hard_line() -> None:
    long = {}
    for module in MODULES.values():
        for node in ast.walk(ast.parse(module.path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{module.path.relative_to(ROOT)}:{node.name}"] = lines
    assert long == {}
