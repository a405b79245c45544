"""Which code runs a layer, its formula or its fast kernel: the one rule, in one place.

Every layer's `forward` and `backward` is its formula, written as the maths reads: one fresh
array per step, and right after each step's NumPy lines, the trace event that shows it
(`watcher().forward(...)`). engine/fast/kernels.py holds the same arithmetic run fast: row
blocks on the thread pool, buffers overwritten in place, attention's chain fused per block of
rows, a key/value cache preallocated for decoding.

The rule: the formula runs while something records (the recorder must see every step, each in
an array of its own) or inside `formulas()`; otherwise the kernels run. A layer asks once, on
the first line of its forward and of its backward. Both ways give the same bits: the kernels
compute the same expressions in the same order (tests/engine/test_trace.py checks traced
against untraced values, tests/engine/test_parallel.py one thread against two).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ..recorder import Recorder, active

_formulas_only: ContextVar[bool] = ContextVar("tui_tfs_formulas_only", default=False)


def use_kernels() -> bool:
    """True when a layer may run its fast kernel: nothing records, no `formulas()` block."""
    return active() is None and not _formulas_only.get()


@contextmanager
def formulas() -> Iterator[None]:
    """Run every layer's formula inside the block, even when nothing records."""
    token = _formulas_only.set(True)
    try:
        yield
    finally:
        _formulas_only.reset(token)


class _Nobody:
    """Stands in for a recorder when nothing records: the formula's events go nowhere."""

    def forward(self, *args, **kwargs) -> None:
        return None

    def backward(self, *args, **kwargs) -> None:
        return None


_NOBODY = _Nobody()


def watcher() -> Recorder | _Nobody:
    """The active recorder, or a stand-in that drops the events (inside `formulas()`)."""
    return active() or _NOBODY
