"""The off-by-default hook that layers emit into: how the UI sees inside.

A layer asks `active()` once per call. When nothing is recording it gets `None` and does
nothing more (one context-variable read per layer call). When a `Recorder` is active, the
layer emits an `Event` per operation with copies of the tensors it read and wrote, so later
in-place work can never change what was recorded.

A trace costs one copy: one op's output is the next op's input, and a weight is named by its
layer's forward and backward, so the recorder copies each distinct live array (the same
memory seen with the same shape and strides) once, and every event that names it shares that
copy. The engine's side of the bargain: an array is not changed in place after an event has
named it, until the recording ends (each op writes fresh arrays while recording).

A recorder told which buffers live on (`Recorder(long_lived=[p.data for p in
model.params()])`, as `engine.trace.trace.record_step` and the benchmark do) copies nothing else:
every float array an op writes while recording is fresh and is never written again (the next
step writes new ones), so the trace keeps it as it is. It copies, once, the views of those buffers (the weights,
which an optimizer step changes in place) and integer and boolean arrays (token ids a caller
may reuse); tests/engine/test_trace.py checks that later steps change no recorded array.

    with recording() as rec:
        logits = model.forward(src, tgt_in)
        ...
    rec.events  # forward ops in order, then backward ops in the order they ran

A recorder given the facts the model declared (`Recorder(facts=facts_by_path([model, loss]))`)
stamps each event with the facts of the layer that emitted it (`Event.facts`: its token
streams, attention kind, causality, parameters; see engine.maths.facts), so no reader has to
guess them from the path.

Each event also says where in the engine it was emitted (`Event.where`: the emitting
function's file, name and def line, the emit call's line and the same call's previous emit),
so a viewer can show the lines that computed it: a layer's NumPy lines for an op sit right
above the op's emit. One frame lookup per event (`sys._getframe`), nothing when not recording.

A tensor an event shows but the step itself never needs (each of q, k and v's share of their
input's gradient, when the step computes only the sum in one product) is named as
`Later(fn, *arrays)`: the recorder keeps (copies) the arrays as it keeps any tensor, and the
event computes fn(*arrays) the first time a reader asks for it (`Event.tensors` is a `Tensors`
mapping), so a recorded step does not pay for what nobody looks at.
"""
from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .facts import NO_FACTS, Facts, facts_of

FORWARD = "forward"
BACKWARD = "backward"
UPDATE = "update"  # the optimizer's step after the backward (engine.maths.optim)


class Where(NamedTuple):
    """Where an event was emitted: the op's code is the emitting function's lines after
    `previous` (or after the def line and docstring when None) up to the emit at `line`.
    (Immutable; a tuple: made for every event, ~5x cheaper than a frozen dataclass.)"""

    file: str  # the module's file as Python loaded it (code.co_filename)
    function: str  # qualified name of the emitting function: "MultiHeadAttention._softmax"
    first_line: int  # the function's first line (co_firstlineno: its first decorator, if any)
    line: int  # the first line of the emit call
    previous: int | None  # the line of the same call's previous emit; None for its first


class Later:
    """A tensor computed when first read: `Later(fn, a, b)` stands for fn(a, b)."""

    __slots__ = ("fn", "arrays")

    def __init__(self, fn: Callable[..., np.ndarray], *arrays: np.ndarray) -> None:
        self.fn, self.arrays = fn, arrays

    def value(self) -> np.ndarray:
        with np.errstate(all="ignore"):  # as while recording: a diverged step's trace shows it
            return self.fn(*self.arrays)


class Tensors(MutableMapping):
    """An event's tensors by name; a `Later` one is computed on its first read, then kept."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, np.ndarray | Later]) -> None:
        self._values = dict(values)

    def __getitem__(self, name: str) -> np.ndarray:
        value = self._values[name]
        if isinstance(value, Later):
            value = self._values[name] = value.value()
        return value

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self._values[name] = value

    def __delitem__(self, name: str) -> None:
        del self._values[name]

    def __contains__(self, name: object) -> bool:  # without computing a `Later` one
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Tensors({', '.join(self._values)})"


@dataclass
class Event:
    """One operation of one pass."""

    index: int  # position in the trace
    phase: str  # "forward" | "backward" | "update"
    path: str  # dotted place in the model: "encoder.blocks.0.self_attn.softmax"
    op: str  # what ran: "linear", "scores", "mask", "softmax", "layernorm", ...
    tensors: Mapping[str, np.ndarray] = field(repr=False)  # name -> copy ("x", "out", "d_x", "grad.w")
    formula: str = ""  # key of the explanation shown beside it (engine.trace.formulas)
    attrs: dict[str, object] = field(default_factory=dict)  # small numbers: head count, scale, p
    facts: Facts = NO_FACTS  # what the op means, as the model declared it (engine.maths.facts)
    where: Where | None = None  # the engine lines that emitted it (None: made by hand)


class Recorder:
    """Collects events while active; see `recording()`."""

    def __init__(self, long_lived: Sequence[np.ndarray] | None = None,
                 facts: Mapping[str, Facts] | None = None) -> None:
        """long_lived: None copies every array named (once); a list of buffers (the model's
        parameters) copies only their views and non-float arrays, and keeps the rest.
        facts: {module path: facts} (`engine.maths.facts.facts_by_path`), stamped on events."""
        self.events: list[Event] = []
        self._facts = dict(facts or {})
        owners = None if long_lived is None else (_owner(np.asarray(b)) for b in long_lived)
        self._long_lived = None if owners is None else {id(o): o for o in owners}
        # (owner id, address, shape, strides, dtype) -> (weak reference to the owner, copy)
        self._copies: dict[tuple, tuple[weakref.ref, np.ndarray]] = {}
        # id of an array object already copied (a weight's view, named by several events) ->
        # (weak reference to it, its copy): the same object skips working out its address
        self._copied_objects: dict[int, tuple[weakref.ref, np.ndarray]] = {}
        # emitting function's code -> (id of the frame of its latest call, line of its emit)
        self._last_emit: dict[object, tuple[int, int]] = {}

    def copy_of(self, array: np.ndarray) -> np.ndarray:
        """A copy of `array` as it is now; the same copy for every event naming the same live
        array. The owner of the memory is held weakly: once it is freed, its address may be
        reused by a new array, which then gets a copy of its own."""
        array = np.asarray(array)
        owner = _owner(array)
        if (self._long_lived is not None and array.dtype.kind == "f"
                and self._long_lived.get(id(owner)) is not owner):
            return array  # written fresh by the op that named it, never written again
        same = self._copied_objects.get(id(array))
        if same is not None and same[0]() is array:
            return same[1]
        key = (id(owner), array.__array_interface__["data"][0], array.shape, array.strides,
               array.dtype.str)
        known = self._copies.get(key)
        if known is not None and known[0]() is owner:
            copy = known[1]
        else:
            copy = np.array(array, copy=True)
            self._copies[key] = (weakref.ref(owner), copy)
        self._copied_objects[id(array)] = (weakref.ref(array), copy)
        return copy

    def emit(
        self,
        phase: str,
        path: str,
        op: str,
        tensors: Mapping[str, np.ndarray | None],
        formula: str | None = None,
        **attrs: object,
    ) -> Event:
        """Record one op; tensors are copied (once per live array), `None` entries left out;
        a `Later` tensor keeps copies of its arrays and is computed when first read."""
        copies = Tensors({name: Later(t.fn, *map(self.copy_of, t.arrays))
                          if isinstance(t, Later) else self.copy_of(t)
                          for name, t in tensors.items() if t is not None})
        if formula is None:
            formula = op if phase == FORWARD else f"{op}.backward"
        event = Event(len(self.events), phase, path, op, copies, formula, dict(attrs),
                      facts_of(self._facts, path), self._where())
        self.events.append(event)
        return event

    def _where(self) -> Where:
        """The frame that called emit (directly or through forward/backward) as a `Where`.
        The previous emit counts only from the same call (the same frame) and above this line:
        a new call of the function starts again from its def line."""
        frame = sys._getframe(2)
        while frame.f_code in _OWN_CODE:
            frame = frame.f_back
        code, line = frame.f_code, frame.f_lineno
        last = self._last_emit.get(code)
        previous = last[1] if last is not None and last[0] == id(frame) and last[1] < line \
            else None
        self._last_emit[code] = (id(frame), line)
        return Where(code.co_filename, code.co_qualname, code.co_firstlineno, line, previous)

    def forward(self, path: str, op: str, tensors: Mapping, formula: str | None = None, **attrs):
        return self.emit(FORWARD, path, op, tensors, formula, **attrs)

    def backward(self, path: str, op: str, tensors: Mapping, formula: str | None = None, **attrs):
        return self.emit(BACKWARD, path, op, tensors, formula, **attrs)

    def update(self, path: str, op: str, tensors: Mapping, formula: str, **attrs):
        return self.emit(UPDATE, path, op, tensors, formula, **attrs)


_OWN_CODE = {Recorder.emit.__code__, Recorder.forward.__code__, Recorder.backward.__code__}


def _owner(array: np.ndarray) -> np.ndarray:
    """The array whose memory `array` is (itself, or the base of a view)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


_current: ContextVar[Recorder | None] = ContextVar("tui_tfs_recorder", default=None)


def active() -> Recorder | None:
    """The recorder in effect, or None (the common, free case)."""
    return _current.get()


@contextmanager
def recording(recorder: Recorder | None = None) -> Iterator[Recorder]:
    """Record every op run inside the block into `recorder` (a new one by default)."""
    recorder = recorder if recorder is not None else Recorder()
    token = _current.set(recorder)
    try:
        yield recorder
    finally:
        _current.reset(token)
