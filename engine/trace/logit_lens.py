"""The logit lens: what a decoder-only model would predict if it stopped after each block.

The residual stream x_l (T,D) after block l goes through what the model runs after its last
block, the final LayerNorm (pre-LN models such as GPT-2; a post-LN block already ends in a
LayerNorm, so there is none) and the output head:

    lens_l = softmax(head(ln_f(x_l)))      (T, V): a next-token distribution per position

Row 0 is the stream before block 1 (the embeddings), row l the stream after block l; the last
row is the model's own output distribution. The streams are read from a trace: x_0 is what the
first event of block 1 read ("x"), x_l what the last event of block l wrote ("out"), so nothing
runs through the blocks again. Only the final norm and the head run, one row at a time (a
(T,V) float at a time: 6 MB for 32 GPT-2 tokens), and only the top tokens and the target's
rank are kept.

Shapes: L blocks, T positions, D model width, V vocabulary, k top tokens kept.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..maths.models import DecoderOnlyLM
from ..maths.recorder import FORWARD
from .trace import Trace

EMBEDDINGS = "embeddings"  # the name of row 0: the stream before the first block


class LensError(ValueError):
    """A logit lens that cannot be taken; the message says why."""


@dataclass(frozen=True)
class LogitLens:
    """The lens of one batch item: per row (embeddings, then each block) and position, the most
    likely next tokens and where the target ranks."""

    rows: tuple[str, ...]  # (L+1,) EMBEDDINGS, then each block's path ("blocks.0", ...)
    item: int  # the batch item (0-based)
    input_ids: np.ndarray  # (T,) the tokens read
    top_ids: np.ndarray  # (L+1, T, k) the most likely next tokens, most likely first
    top_probs: np.ndarray  # (L+1, T, k) their probabilities (float64)
    target_ids: np.ndarray | None  # (T,) the next token at each position; None: no targets
    target_rank: np.ndarray | None  # (L+1, T) 1 = the most likely token; 0 where no target
    target_probs: np.ndarray | None  # (L+1, T) the target's probability; NaN where none
    final_norm: bool  # whether a final LayerNorm ran before the head (pre-LN)

    @property
    def positions(self) -> int:
        return int(self.input_ids.shape[0])


def lens_model(model) -> DecoderOnlyLM:
    """`model` if the lens applies to it; LensError naming what it is otherwise."""
    if not isinstance(model, DecoderOnlyLM):
        raise LensError(f"the logit lens reads a decoder-only model; this one is "
                        f"{type(model).__name__} (an encoder-decoder's decoder also reads "
                        f"the source, so its stream is not a language model's)")
    return model


def residual_streams(model: DecoderOnlyLM, trace: Trace, item: int = 0) -> np.ndarray:
    """(L+1, T, D) the residual stream of batch item `item`: before block 1, after each block,
    as `trace` recorded it."""
    lens_model(model)
    streams = []
    for n, block in enumerate(model.blocks):
        events = [e for e in trace.events if e.phase == FORWARD and e.facts.block == block.path]
        if not events or "x" not in events[0].tensors or "out" not in events[-1].tensors:
            raise LensError(f"the trace holds no residual stream at {block.path}: record a "
                            f"forward pass of this model")
        if n == 0:
            streams.append(events[0].tensors["x"][item])  # (T,D) the embeddings
        streams.append(events[-1].tensors["out"][item])  # (T,D) after this block
    if not model.blocks:
        raise LensError("the model has no blocks: there is nothing between input and output")
    return np.stack(streams)


def lens_logits(model: DecoderOnlyLM, stream: np.ndarray) -> np.ndarray:
    """(..., T, V) logits the model would give if `stream` (..., T, D) had left its last block:
    the final LayerNorm (if the model has one), then the head."""
    x = stream if model.ln_f is None else model.ln_f.infer(stream)
    return model.head.infer(x)


def _probabilities(logits: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """softmax(logits) (T, V) at the token `ids` (T, n) only, in float64: the row maximum
    subtracted, the normaliser summed in float64 (the whole (T, V) softmax is never kept)."""
    top = logits.max(axis=-1, keepdims=True)  # (T, 1)
    total = np.exp(logits - top).sum(axis=-1, dtype=np.float64, keepdims=True)  # (T, 1)
    picked = np.take_along_axis(logits, ids, -1).astype(np.float64)  # (T, n)
    return np.exp(picked - top) / total


def lens_cost(model, trace: Trace) -> int:
    """Multiply-adds the lens of one batch item costs: (L+1) x T x D x V for the head."""
    c = lens_model(model).config
    return (c.n_layers + 1) * int(trace.batch.tgt_in.shape[1]) * c.d_model * c.vocab_size


def logit_lens(model, trace: Trace, item: int = 0, top: int = 5,
               cancelled: Callable[[], bool] | None = None) -> LogitLens | None:
    """The lens of batch item `item` of `trace`, keeping the `top` most likely tokens; None
    when `cancelled()` turns true (asked between rows: a caller's thread can stop early)."""
    model = lens_model(model)
    batch = trace.batch
    if not 0 <= item < batch.tgt_in.shape[0]:
        raise LensError(f"item must be below {batch.tgt_in.shape[0]}, got {item}")
    streams = residual_streams(model, trace, item)  # (L+1, T, D)
    targets = np.asarray(batch.tgt_out[item])  # (T,)
    pad = model.config.pad_id
    counted = np.ones(targets.shape, dtype=bool) if pad is None else targets != pad  # (T,)
    k = min(top, model.config.vocab_size)
    rows = len(streams)
    top_ids = np.empty((rows, len(targets), k), dtype=np.int64)
    top_probs = np.empty((rows, len(targets), k))
    target_rank = np.zeros((rows, len(targets)), dtype=np.int64)
    target_probs = np.full((rows, len(targets)), np.nan)
    at = np.arange(len(targets))
    for row, stream in enumerate(streams):
        if cancelled is not None and cancelled():
            return None
        logits = lens_logits(model, stream)  # (T, V); softmax keeps their order
        best = np.argpartition(-logits, k - 1, axis=-1)[:, :k]  # (T, k) unordered
        order = np.argsort(-np.take_along_axis(logits, best, -1), axis=-1, kind="stable")
        top_ids[row] = np.take_along_axis(best, order, -1)
        top_probs[row] = _probabilities(logits, top_ids[row])
        target_logit = logits[at, targets]  # (T,)
        rank = 1 + (logits > target_logit[:, None]).sum(axis=-1)  # ties share the better rank
        target_rank[row] = np.where(counted, rank, 0)
        target_probs[row] = np.where(counted, _probabilities(logits, targets[:, None])[:, 0],
                                     np.nan)
    has_targets = bool(counted.any())
    return LogitLens(
        rows=(EMBEDDINGS, *(b.path for b in model.blocks)), item=item,
        input_ids=np.asarray(batch.tgt_in[item]), top_ids=top_ids, top_probs=top_probs,
        target_ids=targets if has_targets else None,
        target_rank=target_rank if has_targets else None,
        target_probs=target_probs if has_targets else None,
        final_norm=model.ln_f is not None)
