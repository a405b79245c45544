"""Arrows only go one way: no module of engine/, scenarios/ or tui_tfs/ reaches itself by
imports (at the top or inside a function), and the packages import only downwards.

An import under `if TYPE_CHECKING:` never runs; it names a type for annotations and is not
an arrow here."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "scenarios", "tui_tfs")
LAYER = {"engine": 0, "scenarios": 1, "tui_tfs": 2}  # a package imports only lower layers


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports, anywhere in the file; `from x import y` counts as
    x.y when that is a module, else as x."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != name}


def _runtime_nodes(tree: ast.AST):
    """Every node of `tree` except the bodies of `if TYPE_CHECKING:` blocks."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_the_import_graph_has_no_cycles():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_packages_import_only_downwards():
    upward = sorted((name, target) for name, targets in _graph().items() for target in targets
                    if LAYER[target.split(".")[0]] > LAYER[name.split(".")[0]])
    assert upward == []


def test_scenarios_base_and_tasks_do_not_import_what_builds_on_them():
    graph = _graph()
    assert "scenarios.base" not in graph["scenarios.predict"]
    assert "scenarios.tasks" not in graph["scenarios.pairs"]


def test_engine_wings_import_only_downwards():
    """bench -> training and trace -> maths -> fast; trace and training never import each
    other (replaying a trace needs no trainer)."""
    below = {"fast": set(), "maths": {"fast"}, "trace": {"maths", "fast"},
             "training": {"maths", "fast"}, "bench": {"training", "trace", "maths", "fast"}}
    wrong = []
    for name, targets in _graph().items():
        parts = name.split(".")
        if parts[0] != "engine" or len(parts) < 3:
            continue
        for target in targets:
            wing = target.split(".")[1] if target.count(".") >= 1 else None
            if target.startswith("engine.") and wing != parts[1] and wing not in below[parts[1]]:
                wrong.append((name, target))
    assert wrong == []
