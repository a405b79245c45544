"""A batch of token ids, and the one way to run a model on it.

`Batch` is what the models, the loss, the trainer and the trace all take; `run_model` is the
only place that knows an encoder-decoder reads (src, tgt_in) and a decoder-only model reads
(tgt_in,), so nothing else tests `batch.src is None`.

Shapes: B batch, S source length, T target length, V vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Batch:
    """One batch of token ids. `tgt_out` is `tgt_in` shifted by one: the next token at each place."""

    src: np.ndarray | None  # (B, S) source ids, or None for a decoder-only model
    tgt_in: np.ndarray  # (B, T) what the decoder reads (starts with BOS)
    tgt_out: np.ndarray  # (B, T) what it must predict; pad positions are not counted


def model_inputs(model, batch: Batch) -> tuple[np.ndarray, ...]:
    """What `model.forward` takes for this batch: (src, tgt_in) or (tgt_in,); ValueError
    naming the mismatch when the batch does not fit the model's kind."""
    if batch.tgt_in.shape != batch.tgt_out.shape:
        raise ValueError(f"batch.tgt_in {batch.tgt_in.shape} and batch.tgt_out "
                         f"{batch.tgt_out.shape} must have the same shape "
                         f"(tgt_out is tgt_in shifted by one)")
    if model.config.kind == "encoder_decoder":
        if batch.src is None:
            raise ValueError("an encoder-decoder model needs batch.src (B, S); got None")
        return batch.src, batch.tgt_in
    if batch.src is not None:
        raise ValueError("a decoder-only model takes no source: batch.src must be None")
    return (batch.tgt_in,)


def run_model(model, batch: Batch) -> np.ndarray:
    """Logits (B, T, V): the model's forward pass on the batch, whichever kind it is."""
    return model.forward(*model_inputs(model, batch))
