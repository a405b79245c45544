"""A Trace: every operation of one forward + loss + backward pass on one batch, for replay
(and, for a traced training step, the optimizer's update after it: phase "update").

The engine records; the UI replays. `record_step` runs one step with recording on and wraps
the events with what a viewer needs to label them: the batch's tokens as strings, the loss,
the config, and a layer tree derived from the dotted paths:

    model > encoder | decoder > blocks.0 > self_attn > softmax

Shapes of attention maps: B batch, H heads, T queries, S keys.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..maths.config import ModelConfig
from ..maths.facts import SOURCE, Facts, facts_by_path
from ..maths.param import Module
from ..maths.recorder import BACKWARD, FORWARD, UPDATE, Event, Recorder, recording
from ..maths.batch import Batch, run_model  # the batch a step (traced or not) runs on

ATTENTION_STAGES = {  # stage -> (op of the attention step, tensor name)
    "scores": ("scores", "scores"),
    "scaled": ("scale", "scaled"),
    "masked": ("mask", "masked"),
    "weights": ("softmax", "weights"),
}


def path_parts(path: str) -> list[str]:
    """"decoder.blocks.1.self_attn.q_proj" -> ["decoder", "blocks.1", "self_attn", "q_proj"]."""
    parts: list[str] = []
    for piece in path.split("."):
        if piece.isdigit() and parts:
            parts[-1] = f"{parts[-1]}.{piece}"
        else:
            parts.append(piece)
    return parts


@dataclass
class TensorStats:
    """Cheap summary of one tensor; NaN and Inf are counted, and left out of the other numbers."""

    shape: tuple[int, ...]
    dtype: str
    min: float
    max: float
    mean: float
    std: float
    norm: float  # L2 norm of the finite values
    zeros: int
    nan: int
    inf: int


def tensor_stats(array: np.ndarray) -> TensorStats:
    """The summary in float64. One float64 copy at most: a float32 tensor's copy is also where
    the spread is worked out, in place, after everything else has read it (GPT-2's (V, D)
    gradients: 308 MB of float64 once, not twice); the same arithmetic as `np.std`, so the
    same bits."""
    a = np.asarray(array)
    values = a.astype(np.float64, copy=False).ravel()
    finite_mask = np.isfinite(values)
    finite = values[finite_mask] if not finite_mask.all() else values
    del finite_mask
    nan = int(np.isnan(values).sum())
    zeros = int(np.count_nonzero(values == 0))
    inf = int(values.size - finite.size - nan)
    empty = finite.size == 0
    low = float("nan") if empty else float(finite.min())
    high = float("nan") if empty else float(finite.max())
    mean = float("nan") if empty else float(finite.mean())
    norm = float(np.sqrt(np.dot(finite, finite)))
    return TensorStats(
        shape=tuple(a.shape), dtype=str(a.dtype), min=low, max=high, mean=mean,
        std=float("nan") if empty else _std(finite, owned=not np.may_share_memory(finite, a)),
        norm=norm, zeros=zeros, nan=nan, inf=inf,
    )


def square_sum(array: np.ndarray) -> float:
    """sum(array^2) in float64, squared in place in its one float64 copy (GPT-2's (V, D)
    gradients: 308 MB once, not twice); the same bits as np.square(array.astype(float64)).sum()."""
    wide = np.asarray(array).astype(np.float64)  # a copy, even of a float64 array
    np.square(wide, out=wide)
    return float(wide.sum())


def _std(values: np.ndarray, owned: bool) -> float:
    """values.std() (1-D float64); `owned`: `values` is a scratch copy, overwritten here."""
    if not owned:
        return float(values.std())
    mean = np.add.reduce(values, keepdims=True) / values.size  # (1,) as np.std takes it
    np.subtract(values, mean, out=values)
    np.multiply(values, values, out=values)
    return float(np.sqrt(np.add.reduce(values) / values.size))


@dataclass
class LayerNode:
    """A node of the layer tree; `events` are the indices of the events at or below it."""

    name: str  # one path component: "decoder", "blocks.0", "self_attn", "softmax"
    path: str  # dotted path from the root ("" for the model)
    children: dict[str, LayerNode] = field(default_factory=dict)
    events: list[int] = field(default_factory=list)

    def walk(self):
        yield self
        for child in self.children.values():
            yield from child.walk()


@dataclass
class AttentionMap:
    """One head's attention at one stage, labelled for display."""

    path: str  # "decoder.blocks.0.cross_attn"
    stage: str  # "scores" | "scaled" | "masked" | "weights"
    head: int
    batch: int
    values: np.ndarray  # (T, S)
    keep: np.ndarray | None  # (T, S) True where the query may see the key, None if no mask
    rows: list[str]  # query tokens (T)
    cols: list[str]  # key tokens (S)
    event_index: int
    facts: Facts  # the layer's: self or cross attention, causal, the rows' and columns' streams


class PathIndex:
    """A trace's events by (phase, path), and each attention layer's forward steps by op
    ("scores", "scale", "mask", "softmax", ...), read from the events' facts. A trace builds
    one (`Trace.index`) and every reader shares it."""

    def __init__(self, events: list[Event]):
        self.forward: dict[str, Event] = {}
        self.backward: dict[str, Event] = {}
        self.attention: dict[str, dict[str, Event]] = {}  # layer path -> op -> forward event
        self.attention_layers: list[str] = []  # in forward order, as their softmax ran
        for event in events:
            if event.phase == FORWARD:
                self.forward[event.path] = event
            elif event.phase == BACKWARD:
                self.backward[event.path] = event
            layer = event.facts.attention_layer
            if event.phase == FORWARD and layer is not None:
                self.attention.setdefault(layer, {})[event.op] = event
                if event.op == "softmax":
                    self.attention_layers.append(layer)


@dataclass
class Trace:
    events: list[Event]
    config: ModelConfig
    batch: Batch
    loss: float
    src_tokens: list[list[str]] | None  # per batch item, the source as token strings
    tgt_tokens: list[list[str]]  # per batch item, the decoder input (or LM input) tokens
    target_tokens: list[list[str]]  # per batch item, what the model should predict
    _stats: dict[tuple[int, str], TensorStats] = field(default_factory=dict, repr=False)
    _squares: dict[tuple[int, str], float] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.events)

    @cached_property
    def first_backward(self) -> int:
        """Index of the first backward event (len(self) if there is none)."""
        return next((e.index for e in self.events if e.phase == BACKWARD), len(self.events))

    @cached_property
    def first_update(self) -> int | None:
        """Index of the optimizer's first update event, or None (a trace of forward and
        backward only: the explorer's traces; a traced training step has them)."""
        return next((e.index for e in self.events if e.phase == UPDATE), None)

    def stats(self, index: int, name: str) -> TensorStats:
        """Statistics of tensor `name` of event `index`, computed once on demand."""
        key = (index, name)
        if key not in self._stats:
            self._stats[key] = tensor_stats(self.events[index].tensors[name])
        return self._stats[key]

    def square_sum(self, index: int, name: str) -> float:
        """sum(tensor^2) in float64 of tensor `name` of event `index` (a gradient norm's
        square), computed once: the gradient-norm view asks at every step of the cursor, and
        GPT-2 small's gradients are 124M numbers."""
        key = (index, name)
        if key not in self._squares:
            self._squares[key] = square_sum(self.events[index].tensors[name])
        return self._squares[key]

    @cached_property
    def tree(self) -> LayerNode:
        """model > encoder/decoder > block > sublayer > op, each node listing its events."""
        root = LayerNode("model", "")
        for event in self.events:
            node = root
            node.events.append(event.index)
            for part in path_parts(event.path):
                path = f"{node.path}.{part}" if node.path else part
                node = node.children.setdefault(part, LayerNode(part, path))
                node.events.append(event.index)
        return root

    def find_path(self, path: str, phase: str = FORWARD) -> int | None:
        """Index of the first event of `phase` at `path` or below it, or None."""
        prefix = path + "."
        for event in self.events:
            if event.phase == phase and (event.path == path or event.path.startswith(prefix)):
                return event.index
        return None

    @cached_property
    def index(self) -> PathIndex:
        """The events by path and the attention layers' steps, built once for this trace."""
        return PathIndex(self.events)

    def forward_at(self, path: str) -> Event | None:
        """The forward event at exactly `path`, or None."""
        return self.index.forward.get(path)

    def backward_at(self, path: str) -> Event | None:
        """The backward event at exactly `path`, or None."""
        return self.index.backward.get(path)

    # -- attention ------------------------------------------------------------------------------
    @property
    def attention_paths(self) -> list[str]:
        """Every attention layer in forward order: "encoder.blocks.0.self_attn", ..."""
        return self.index.attention_layers

    def attention(self, path: str, head: int = 0, batch: int = 0,
                  stage: str = "weights") -> AttentionMap:
        """One head's (T, S) map at one stage, with query tokens down and key tokens across."""
        if stage not in ATTENTION_STAGES:
            raise ValueError(f"stage must be one of {list(ATTENTION_STAGES)}, got {stage!r}")
        op, tensor = ATTENTION_STAGES[stage]
        steps = self.index.attention.get(path, {})
        event = steps.get(op)
        if event is None and stage == "masked":  # no mask in this layer: masked == scaled
            event, tensor = steps.get("scale"), "scaled"
        if event is None:
            raise KeyError(f"no attention {stage!r} recorded at {path!r}; "
                           f"attention layers are {self.attention_paths}")
        values = event.tensors[tensor]  # (B, H, T, S)
        if not (0 <= batch < values.shape[0] and 0 <= head < values.shape[1]):
            raise IndexError(f"batch must be < {values.shape[0]} and head < {values.shape[1]}, "
                             f"got batch {batch}, head {head}")
        mask_event = steps.get("mask")
        keep = None
        if mask_event is not None:
            keep = np.broadcast_to(mask_event.tensors["keep"], values.shape)[batch, head]
        rows = self.stream_tokens(event.facts.rows, batch)
        cols = self.stream_tokens(event.facts.keys, batch)
        return AttentionMap(path, stage, head, batch, values[batch, head], keep, rows, cols,
                            event.index, event.facts)

    def stream_tokens(self, stream: str | None, batch: int) -> list[str]:
        """The tokens of one batch item's `stream` (SOURCE or TARGET) as strings."""
        if stream == SOURCE and self.src_tokens is not None:
            return self.src_tokens[batch]
        return self.tgt_tokens[batch]

    # -- gradients --------------------------------------------------------------------------------
    def param_grads(self) -> dict[str, np.ndarray]:
        """Each parameter's gradient, summed over the backward events that contributed to it.

        A tied embedding receives two contributions (lookup and output projection).
        """
        grads: dict[str, np.ndarray] = {}
        for event in self.events:
            if event.phase != BACKWARD:
                continue
            for local, name in event.facts.params.items():
                grad = event.tensors.get(f"grad.{local}")
                if grad is not None:
                    grads[name] = grads[name] + grad if name in grads else grad.copy()
        return grads


def record_step(model: Module, loss_fn: Module, batch: Batch,
                src_tokens: list[list[str]] | None, tgt_tokens: list[list[str]],
                target_tokens: list[list[str]], weights_fixed: bool = False) -> Trace:
    """Run forward, loss and backward on `batch` with recording on; gradients land in the
    model as in a plain step (they are zeroed first).

    The trace keeps what the ops wrote as it is and copies the weights, which an optimizer
    changes in place; with `weights_fixed` (a model nothing will train or load into while the
    trace lives: an opened GPT-2 folder) it names the model's own weight arrays and copies
    none (GPT-2 small: 124M weights, 500 MB in float32, and its tied head once more), and the
    model's gradient buffer is handed back afterwards (left at zero): the trace holds every
    gradient (`Trace.param_grads`), and nothing will step with the model's.

    Overflow and NaN are not warned about: a trace of a diverged step is where the user goes
    to find them (the checks and the next-NaN search report them), and a warning printed to
    the terminal would land in the middle of the explorer's screen.
    """
    model.zero_grad()
    long_lived = [] if weights_fixed else [p.data for p in model.params()]
    recorder = Recorder(long_lived=long_lived, facts=facts_by_path([model, loss_fn]))
    with recording(recorder) as rec, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        logits = run_model(model, batch)  # (B, T, V)
        loss = loss_fn.forward(logits, batch.tgt_out)
        model.backward(loss_fn.backward())
    if weights_fixed:
        model.packed.release_grad()
    return Trace(rec.events, model.config, batch, float(loss), src_tokens, tgt_tokens,
                 target_tokens)
