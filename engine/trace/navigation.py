"""Stepping through a Trace the way a debugger steps through code.

The cursor stands on an event and on a *level*: how many components of that event's path
are the "current statement". At the top level, `over` steps a whole block at a time; `into`
descends one level (the current event is the first of the child too); `out` finishes the
current layer and stops just after it. `next` / `prev` move one event and land on the leaf.

A node is a (phase, path prefix) pair, so the backward pass of a block is a different node
from its forward pass, as a return is different from a call. A traced training step has a
third phase after the backward, "update": one event per parameter, at the parameter's name,
so `over` steps a block's whole update at once there too.

    cursor = Cursor(trace)
    cursor.over()                      # to the next block
    cursor.into(); cursor.into()       # down to the self-attention, then its q projection
    cursor.find_next(has_nonfinite)    # run to the next NaN/Inf
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..maths.recorder import Event
from .trace import Trace, path_parts

Predicate = Callable[[Event], bool]


def has_nonfinite(event: Event) -> bool:
    """True if any tensor of the event holds NaN or Inf."""
    return any(t.dtype.kind == "f" and not np.isfinite(t).all() for t in event.tensors.values())


def grad_norm_above(bound: float) -> Predicate:
    """Events in which some gradient tensor ("d_*" or "grad.*") has L2 norm above `bound`."""

    def check(event: Event) -> bool:
        return any((name.startswith("d_") or name.startswith("grad.")) and
                   float(np.linalg.norm(t.astype(np.float64).ravel())) > bound
                   for name, t in event.tensors.items())

    check.__doc__ = f"gradient norm above {bound}"
    return check


def at_path(path: str) -> Predicate:
    """Events at `path` or inside it."""

    def check(event: Event) -> bool:
        return event.path == path or event.path.startswith(path + ".")

    check.__doc__ = f"at {path}"
    return check


def op_is(op: str) -> Predicate:
    def check(event: Event) -> bool:
        return event.op == op

    check.__doc__ = f"op {op}"
    return check


class Cursor:
    """A position in a trace: an event index and a level in its path."""

    def __init__(self, trace: Trace, index: int = 0, level: int = 1):
        if not len(trace):
            raise ValueError("the trace has no events to step through")
        self.trace = trace
        self.goto(index)
        wanted = max(1, level)
        self.level = min(wanted, self.level)
        self.wanted_level = wanted  # the level `over` keeps to, where paths are deep enough

    @property
    def level(self) -> int:
        """How many path components make the current node."""
        return self._level

    @level.setter
    def level(self, value: int) -> None:
        """Choosing a level by hand also makes it the one `over` keeps to."""
        self._level = self.wanted_level = value

    @property
    def event(self) -> Event:
        return self.trace.events[self.index]

    def node(self) -> tuple[str, str]:
        """The current (phase, path prefix)."""
        parts = path_parts(self.event.path)[: self.level]
        return self.event.phase, ".".join(parts)

    def _depth(self, index: int) -> int:
        return len(path_parts(self.trace.events[index].path))

    def _in_node(self, index: int, node: tuple[str, str]) -> bool:
        event = self.trace.events[index]
        phase, prefix = node
        return event.phase == phase and (event.path == prefix or event.path.startswith(prefix + "."))

    # -- single events ----------------------------------------------------------------------------
    def goto(self, index: int) -> Cursor:
        """Stand on event `index` (clamped to the trace), at its leaf level."""
        self.index = max(0, min(index, len(self.trace) - 1))
        self.level = self._depth(self.index)
        return self

    def _land(self, index: int) -> None:
        """Stand on `index` at the wanted level, or as deep as its path goes."""
        self.index = index
        self._level = min(self.wanted_level, self._depth(index))

    def next(self) -> Cursor:
        return self.goto(self.index + 1)

    def prev(self) -> Cursor:
        return self.goto(self.index - 1)

    # -- structured stepping ----------------------------------------------------------------------
    def over(self) -> Cursor:
        """Skip the rest of the current node; stop at the first event after it, same level."""
        node = self.node()
        index = self.index
        while index < len(self.trace) - 1 and self._in_node(index, node):
            index += 1
        if self._in_node(index, node):  # the node runs to the end of the trace
            return self
        self._land(index)
        return self

    def back_over(self) -> Cursor:
        """The mirror of `over`: to the start of the previous node at this level."""
        if self.index == 0:
            return self
        index = self.index - 1
        self._land(index)
        node = self.node()
        while index > 0 and self._in_node(index - 1, node):
            index -= 1
        self.index = index
        return self

    def into(self) -> Cursor:
        """Descend one level (no move if already at an op)."""
        self.level = min(self.level + 1, self._depth(self.index))
        return self

    def out(self) -> Cursor:
        """Finish the enclosing layer: stop at the first event after it, one level up."""
        if self.level > 1:
            self.level -= 1
        return self.over()

    # -- jumps ------------------------------------------------------------------------------------
    def to_first_backward(self) -> Cursor:
        return self.goto(self.trace.first_backward)

    def to_first_update(self) -> Cursor:
        """To the optimizer's first update event (after the backward); no move without one."""
        first = self.trace.first_update
        return self if first is None else self.goto(first)

    def to_end_of_forward(self) -> Cursor:
        return self.goto(self.trace.first_backward - 1)

    def to_path(self, path: str, phase: str = "forward") -> Cursor:
        index = self.trace.find_path(path, phase)
        if index is None:
            raise KeyError(f"no {phase} event at {path!r}")
        return self.goto(index)

    def find_next(self, predicate: Predicate, include_current: bool = False) -> bool:
        """Move to the next event matching `predicate` (after this one, or from this one with
        `include_current`: a NaN can sit in the very first event); False if none."""
        for index in range(self.index + (0 if include_current else 1), len(self.trace)):
            if predicate(self.trace.events[index]):
                self.goto(index)
                return True
        return False

    def find_prev(self, predicate: Predicate) -> bool:
        for index in range(self.index - 1, -1, -1):
            if predicate(self.trace.events[index]):
                self.goto(index)
                return True
        return False
