"""The engine lines that computed an event: its emitting function, with the op's lines marked.

The engine records where each event was emitted (`Event.where`: file, function, def line, the
emit's line and the same call's previous emit). A layer writes an op's NumPy lines right above
the op's emit, so the op's code is the statements after the previous emit (or after the def
line and docstring) down to the end of this emit:

    where = session.event.where
    source = op_source(where)   # the whole function, and which of its lines are the op's
    source.code, source.start, source.marked   # text, its first line's number, (first, last)

Only files inside the engine package are read; anything else is a SourceError saying so.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import engine
from engine.maths.recorder import Where

ENGINE_DIR = Path(engine.__file__).resolve().parent


class SourceError(Exception):
    """The event's code cannot be shown (no location recorded, or not an engine file)."""


@dataclass(frozen=True)
class OpSource:
    """One emitting function's source with the op's lines."""

    path: str  # the file, from the project's root: "engine/maths/layers/attention.py"
    function: str  # "MultiHeadAttention._normalise"
    code: str  # the whole function, decorators and def line included
    start: int  # the file's line number of code's first line
    marked: tuple[int, int]  # first and last line (file numbers, inclusive) of the op

    @property
    def lines(self) -> set[int]:
        return set(range(self.marked[0], self.marked[1] + 1))

    def marked_text(self) -> str:
        """The op's lines as text (what a test can look for an operation in)."""
        rows = self.code.splitlines()
        return "\n".join(rows[self.marked[0] - self.start: self.marked[1] - self.start + 1])


def engine_file(where: Where | None) -> Path:
    """The recorded file, checked to be one of the engine's own."""
    if where is None:
        raise SourceError("this event has no recorded place in the engine's code")
    path = Path(where.file).resolve()
    if not path.is_relative_to(ENGINE_DIR) or path.suffix != ".py":
        raise SourceError(f"{where.file} is not a file of the engine ({ENGINE_DIR}): "
                          f"only the engine's code is shown")
    if not path.is_file():
        raise SourceError(f"{path} is gone: the engine's code changed since this trace")
    return path


def op_source(where: Where | None) -> OpSource:
    """The function that emitted the event, with the op's lines; SourceError if not shown."""
    path = engine_file(where)
    text, tree = _parsed(path, path.stat().st_mtime_ns)
    function = _function_at(tree, where.first_line)
    if function is None:
        raise SourceError(f"{path.name} has no function at line {where.first_line} any more: "
                          f"the engine's code changed since this trace")
    statements = [node for node in ast.walk(function)
                  if isinstance(node, ast.stmt) and node is not function]
    emit = _innermost(statements, where.line)
    last = emit.end_lineno if emit is not None else where.line
    if where.previous is not None and (before := _innermost(statements, where.previous)):
        first = before.end_lineno + 1
    else:
        first = _first_body_line(function)
    rows = text.splitlines()
    while first < last and not rows[first - 1].strip():  # the blank lines after the last op
        first += 1
    start = _first_line(function)
    code = "\n".join(rows[start - 1: function.end_lineno])
    shown = path.relative_to(ENGINE_DIR.parent).as_posix()
    return OpSource(shown, where.function, code, start, (first, max(first, last)))


@lru_cache(maxsize=16)
def _parsed(path: Path, mtime: int) -> tuple[str, ast.Module]:
    """The file's text and syntax tree, read once per version of the file."""
    text = path.read_text(encoding="utf-8")
    return text, ast.parse(text, filename=str(path))


def _first_line(node: ast.AST) -> int:
    """The line a function starts on: its first decorator's, else its def's (co_firstlineno)."""
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno] + [d.lineno for d in decorators])


def _function_at(tree: ast.Module, first_line: int):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                and _first_line(node) == first_line:
            return node
    return None


def _innermost(statements: list[ast.stmt], line: int) -> ast.stmt | None:
    """The smallest statement that holds `line` (the emit call, not the `if` around it)."""
    holding = [s for s in statements if s.lineno <= line <= s.end_lineno]
    return min(holding, key=lambda s: s.end_lineno - s.lineno, default=None)


def _first_body_line(function) -> int:
    """The first statement after the docstring (the function's first op starts there)."""
    body = function.body
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[1].lineno
    return body[0].lineno
