"""The fault proxy's modules import each other without a circle (AST, no import).

Every import counts: top-level, function-local and ``if TYPE_CHECKING:`` ones alike, so a
circle cannot hide behind a lazy or typing-only import.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import chaos_rec.toxiproxy as pkg

PACKAGE = "chaos_rec.toxiproxy"
ROOT = Path(pkg.__file__).parent


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([PACKAGE, *parts])


def _imported(
    node: ast.Import | ast.ImportFrom, module: str, is_pkg: bool, modules: set[str]
) -> set[str]:
    """Modules one import statement loads: ``from a import b`` is a.b when that is a module, else a.

    The implicit import of a parent package (``import a.b`` runs ``a/__init__``) is not counted,
    as import-linter does not count it.
    """
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_pkg else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    return {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports anywhere in its source."""
    files = {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                is_pkg = path.name == "__init__.py"
                targets |= _imported(node, name, is_pkg, set(files)) & set(files)
        graph[name] = targets - {name}
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_sees_lazy_and_typing_only_circles(tmp_path: Path) -> None:
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "a.py").write_text("from chaos_rec.toxiproxy.b import B\n")
    (tmp_path / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from chaos_rec.toxiproxy.c import C\n"
    )
    (tmp_path / "c.py").write_text("def f():\n    from . import a\n")
    (tmp_path / "d.py").write_text("from chaos_rec.toxiproxy import a, VERSION\n")
    graph = import_graph(tmp_path)
    assert graph["chaos_rec.toxiproxy.c"] == {"chaos_rec.toxiproxy.a"}
    assert graph["chaos_rec.toxiproxy.d"] == {"chaos_rec.toxiproxy", "chaos_rec.toxiproxy.a"}
    assert cycles(graph) == [
        ["chaos_rec.toxiproxy.a", "chaos_rec.toxiproxy.b", "chaos_rec.toxiproxy.c"]
    ]


def test_no_import_circle_in_the_fault_proxy() -> None:
    graph = import_graph()
    # the layers the proxy engine is built of, importing one way only
    assert "chaos_rec.toxiproxy.link" in graph["chaos_rec.toxiproxy.proxy"]
    assert "chaos_rec.toxiproxy.toxics" in graph["chaos_rec.toxiproxy.link"]
    assert "chaos_rec.toxiproxy.interfaces" in graph["chaos_rec.toxiproxy.toxics"]
    assert cycles(graph) == []
