"""chaos_rec.report has no import circle, counting every import (local and typing-only too)."""

from __future__ import annotations

import ast
from pathlib import Path

import chaos_rec.report

PACKAGE = "chaos_rec.report"
ROOT = Path(chaos_rec.report.__file__).parent


def _graph() -> dict[str, set[str]]:
    modules = {f"{PACKAGE}.{p.stem}": p for p in ROOT.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([PACKAGE, base] if base else [PACKAGE])
                targets |= {base} | {f"{base}.{a.name}" for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle as a path (first module repeated at the end), or [] when there is none."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return []
        for nxt in sorted(graph[node]):
            if found := visit(nxt, [*path, node]):
                return found
        done.add(node)
        return []

    for start in sorted(graph):
        if found := visit(start, []):
            return found
    return []


def test_the_graph_sees_the_modules_and_their_imports() -> None:
    graph = _graph()
    assert f"{PACKAGE}.model" in graph[f"{PACKAGE}.terminal"]
    assert f"{PACKAGE}.html" in graph[f"{PACKAGE}.files"]  # the check would see a circle there
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_circle_in_the_report_package() -> None:
    assert _cycle(_graph()) == []
