"""No import circle inside evalsuite/: every module-level import of every module is parsed (imports
inside functions and under `if TYPE_CHECKING:` are lazy and do not count), and the graph must be acyclic."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "evalsuite"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _module_level(tree: ast.Module):
    """Import nodes executed when the module is imported (not in functions, not under TYPE_CHECKING)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            test = ast.unparse(node.test)
            if "TYPE_CHECKING" not in test:
                stack += node.body
            stack += node.orelse
        elif isinstance(node, (ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field, []):
                    stack += child.body if isinstance(child, ast.ExceptHandler) else [child]
        # functions and classes bodies: class bodies run at import time too
        elif isinstance(node, ast.ClassDef):
            stack += node.body


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _module_level(ast.parse(path.read_text(encoding="utf-8"))):
        out |= _targets(node, package, name, modules)
    return out


def all_imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every import of a module, lazy ones too (inside functions, under TYPE_CHECKING)."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        out |= _targets(node, package, name, modules)
    return out


def _targets(node, package: str, name: str, modules: dict[str, Path]) -> set[str]:
    """The evalsuite modules an import node names (a module's own packages are already being imported: not
    an edge)."""
    if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
    else:
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            mod = ".".join(base + ([node.module] if node.module else []))
        else:
            mod = node.module or ""
        targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
    return {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}


def mutual_pairs(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if a in graph.get(b, ())})


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        path.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def graph_of(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_no_import_cycle_in_evalsuite():
    modules = all_modules()
    assert len(modules) > 40
    cycle = find_cycle(graph_of(modules))
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_cycle_finder_sees_a_cycle(tmp_path):
    # the checker itself can fail: a two-module circle written to disk is found
    pkg = tmp_path / "evalsuite"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("import os\nif True:\n    from . import a\n\ndef f():\n    from . import c\n")
    (pkg / "c.py").write_text("from .a import y\n")
    mods = {"evalsuite" + ("." + p.stem if p.stem != "__init__" else ""): p for p in pkg.glob("*.py")}
    g = graph_of(mods)
    assert g["evalsuite.b"] == {"evalsuite.a"}  # the import inside f() does not count
    assert find_cycle(g) == ["evalsuite.a", "evalsuite.b", "evalsuite.a"]


def test_lazy_imports_do_not_count():
    tree = ast.parse("import os\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import json\n"
                     "def f():\n    import re\n")
    names = [a.name for n in _module_level(tree) for a in n.names]
    assert sorted(names) == ["TYPE_CHECKING", "os"]


def test_no_two_modules_import_each_other_even_lazily():
    # a lazy import (inside a function) hides a circle from the import system, not from a reader: no pair of
    # modules may import each other at all (the shared piece goes where both import it one way)
    modules = all_modules()
    graph = {n: all_imports_of(n, p, modules) for n, p in modules.items()}
    assert mutual_pairs(graph) == []


def test_pair_finder_sees_a_lazy_pair(tmp_path):
    pkg = tmp_path / "evalsuite"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import x\n")
    (pkg / "b.py").write_text("from . import a\n")
    (pkg / "c.py").write_text("from .a import f\n")
    mods = {"evalsuite" + ("." + p.stem if p.stem != "__init__" else ""): p for p in pkg.glob("*.py")}
    graph = {n: all_imports_of(n, p, mods) for n, p in mods.items()}
    assert mutual_pairs(graph) == [("evalsuite.a", "evalsuite.b")]
