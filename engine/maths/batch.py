"""A batch of token ids: what the models, the loss, the trainer and the trace all take.

Shapes: B batch, S source length, T target length.
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
