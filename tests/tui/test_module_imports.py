"""The app's modules import one way: no module of tui_tfs reaches itself through its imports
(counting imports made only for type checking and imports inside functions, which still tie
two concepts together)."""
from __future__ import annotations

import ast
from pathlib import Path

import tui_tfs

PACKAGE = Path(tui_tfs.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The tui_tfs modules `path` imports, with `from .x import y` resolved to the module y
    when y is one, else to x."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:
                    found.add(f"{source}.{alias.name}")
                elif source in modules:
                    found.add(source)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imports_of(f, modules) for f in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One path per module that leads back to it, e.g. [render, shading, render]."""
    found = []
    for start in sorted(graph):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    found.append(path + [start])
                    stack = []
                    break
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    return found


def test_the_graph_sees_the_imports_it_must():
    graph = import_graph()
    assert "tui_tfs.shading" in graph["tui_tfs.render"]
    assert "tui_tfs.widgets.panel" in graph["tui_tfs.widgets.views"]


def test_no_module_of_the_app_imports_itself_round_a_circle():
    assert cycles(import_graph()) == []
