"""A probe: one fixed input run through the model at every snapshot, keeping only what a
student watches form over training: each attention layer's softmax weights per head, and the
probe's loss.

A full trace of a step copies every tensor of forward and backward; a probe runs the forward
alone (eval mode, no dropout), with a recorder that keeps the softmax weights and drops every
other event unread, so a frame costs one forward of one example.

    frame = probe_frame(model, batch, step=100)      # the live model, between two steps
    frame.attention["decoder.blocks.0.cross_attn"]   # (H, T, S) weights of batch item 0
    frames = probe_snapshots(model, [(0, w0), (100, w100)], batch)   # weights (P,) each
    attention_entropy(frame)                         # (L, H) mean entropy per query, nats

Shapes: L attention layers, H heads, T query positions, S key positions, P parameter elements.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from ..maths.batch import Batch, run_model
from ..maths.facts import CROSS_ATTENTION, Facts, facts_by_path
from ..maths.loss import CrossEntropyLoss
from ..maths.models import build_model
from ..maths.param import eval_mode
from ..maths.recorder import Recorder, recording


@dataclass(frozen=True)
class ProbeFrame:
    """The probe as the model saw it after `step` steps."""

    step: int  # training steps taken when probed (0: the initial weights)
    loss: float  # the probe's own cross-entropy (mean over its non-pad target tokens)
    layers: tuple[str, ...]  # attention layers in forward order: "encoder.blocks.0.self_attn"
    attention: Mapping[str, np.ndarray]  # layer -> (H, T, S) softmax weights, batch item 0
    cross: frozenset[str]  # the layers whose keys are the encoder's output (cross-attention)
    streams: Mapping[str, tuple[str | None, str | None]]  # layer -> (rows, keys) streams:
    #   SOURCE | TARGET, the tokens that label a map's rows (queries) and columns (keys)


class AttentionOnlyRecorder(Recorder):
    """Keeps each attention layer's softmax weights (a copy) and nothing else: every other
    event is dropped before any tensor is read, copied or located in the source."""

    def __init__(self, facts: Mapping[str, Facts]) -> None:
        super().__init__(facts=facts)
        self.weights: dict[str, np.ndarray] = {}  # layer -> (B, H, T, S), in forward order
        self.cross: set[str] = set()
        self.streams: dict[str, tuple[str | None, str | None]] = {}

    def emit(self, phase, path, op, tensors, formula=None, **attrs):
        if op != "softmax":
            return None
        facts = self._facts.get(path.rsplit(".", 1)[0])
        layer = facts.attention_layer if facts is not None else None
        if layer is None:  # a softmax outside attention (none today): not a map
            return None
        self.weights[layer] = np.array(tensors["weights"], copy=True)
        self.streams[layer] = (facts.rows, facts.keys)
        if facts.attention == CROSS_ATTENTION:
            self.cross.add(layer)
        return None


def probe_frame(model, batch: Batch, step: int) -> ProbeFrame:
    """Run `batch` (its first item is the probe) through `model` in eval mode and keep the
    attention weights and the loss. The model's weights and train/eval modes are unchanged;
    the caller makes sure no training step runs meanwhile (the layers keep forward state)."""
    loss_fn = CrossEntropyLoss(model.config.pad_id)
    recorder = AttentionOnlyRecorder(facts_by_path([model]))
    with eval_mode(model), recording(recorder), np.errstate(over="ignore", invalid="ignore",
                                                            divide="ignore"):
        logits = run_model(model, batch)  # (B, T, V)
        loss = loss_fn.forward(logits[:1], batch.tgt_out[:1])
    attention = {layer: w[0] for layer, w in recorder.weights.items()}  # (H, T, S) each
    return ProbeFrame(step, float(loss), tuple(attention), attention, frozenset(recorder.cross),
                      dict(recorder.streams))


def probe_snapshots(model, snapshots: Iterable[tuple[int, np.ndarray]], batch: Batch
                    ) -> list[ProbeFrame]:
    """One frame per (step, weights (P,)) snapshot, each run on a scratch model of `model`'s
    config holding those weights (the live model is not touched)."""
    scratch = build_model(model.config)
    frames = []
    for step, weights in snapshots:
        scratch.packed.data[...] = weights
        frames.append(probe_frame(scratch, batch, step))
    return frames


def row_entropy(weights: np.ndarray) -> np.ndarray:
    """Entropy in nats of each query's distribution over keys: (..., T, S) -> (..., T). A
    zero weight adds nothing (0 log 0 = 0)."""
    w = np.asarray(weights, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(w > 0, -w * np.log(np.where(w > 0, w, 1.0)), 0.0)
    return terms.sum(axis=-1)


def attention_entropy(frame: ProbeFrame) -> np.ndarray:
    """(L, H): per layer (rows, forward order) and head, the entropy of its attention
    averaged over the query positions that attend to something (a row of zeros, a query that
    may see no key, is left out). Low: each query looks at few keys; ln(S): uniform."""
    rows = []
    for layer in frame.layers:
        w = np.asarray(frame.attention[layer], dtype=np.float64)  # (H, T, S)
        live = w.sum(axis=-1) > 0  # (H, T)
        ent = row_entropy(w)  # (H, T)
        counts = np.maximum(live.sum(axis=-1), 1)
        rows.append((ent * live).sum(axis=-1) / counts)  # (H,)
    return np.array(rows).reshape(len(frame.layers), -1)
