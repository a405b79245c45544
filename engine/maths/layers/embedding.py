"""Token embeddings and positional encodings.

Shapes: B batch, T sequence length, D model width, V vocabulary, L max_len.
"""
from __future__ import annotations

import numpy as np

from ..param import Module, normal_init
from .kernel_choice import watcher


class TokenEmbedding(Module):
    """out[b, t] = E[ids[b, t]] * scale; E (V, D). scale = sqrt(D) as in the paper, or 1."""

    def __init__(self, path: str, vocab_size: int, d_model: int, scale: float, std: float,
                 rng: np.random.Generator, dtype: np.dtype):
        super().__init__(path)
        self.weight = self.add_param("weight", normal_init(rng, (vocab_size, d_model), std, dtype))
        self.scale = scale
        self.ids: np.ndarray | None = None

    def forward(self, ids: np.ndarray) -> np.ndarray:
        self.ids = ids  # (B, T) int
        out = self.weight.data[ids]  # (B, T, D) gather: a fresh array
        if self.scale != 1.0:
            out *= self.scale
        watcher().forward(self.path, "embedding", {"ids": ids, "weight": self.weight.data, "out": out},
                          scale=self.scale, params=self.param_names())
        return out

    def infer(self, ids: np.ndarray) -> np.ndarray:
        out = self.weight.data[ids]  # (B, T, D)
        if self.scale != 1.0:
            out *= self.scale
        return out

    def backward(self, d_out: np.ndarray) -> None:
        # Scatter-add: a token that appears twice gets both rows' gradients.
        # (V, D) zeros from calloc: only the pages of the rows written below become resident
        grad = np.zeros(self.weight.data.shape, dtype=self.weight.data.dtype)
        d_rows = d_out.reshape(-1, d_out.shape[-1])  # (B*T, D)
        if self.scale != 1.0:
            d_rows = d_rows * self.scale
        # Sort the rows by id, then sum each id's run of rows in one pass (np.add.at does the
        # same one row at a time, several times slower).
        ids = self.ids.reshape(-1)  # (N,)
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
        if len(ids):
            grad[sorted_ids[starts]] = np.add.reduceat(d_rows[order], starts, axis=0)
        self.weight.grad += grad
        watcher().backward(self.path, "embedding", {"d_out": d_out, "grad.weight": grad},
                           scale=self.scale, params=self.param_names())
        self.ids = None


def sinusoid_table(max_len: int, d_model: int) -> np.ndarray:
    """PE[p, 2i] = sin(p / 10000^(2i/D)), PE[p, 2i+1] = cos(p / 10000^(2i/D)); (L, D) float64."""
    positions = np.arange(max_len)[:, None]  # (L, 1)
    rates = 1.0 / 10000.0 ** (np.arange(0, d_model, 2) / d_model)  # (ceil(D/2),)
    angles = positions * rates  # (L, ceil(D/2))
    table = np.zeros((max_len, d_model))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, : d_model // 2])
    return table


class PositionalEncoding(Module):
    """out = x + P[:T]: fixed sinusoids ("sinusoidal") or a learned table ("learned").

    With the `no_positional` break switch the add is skipped, and the model can no longer
    tell "1 2 3" from "3 2 1" except through what attention happens to learn.
    """

    def __init__(self, path: str, kind: str, max_len: int, d_model: int, std: float,
                 rng: np.random.Generator, dtype: np.dtype, disabled: bool = False):
        super().__init__(path)
        self.kind = kind
        self.disabled = disabled
        if kind == "learned":
            self.weight = self.add_param("weight", normal_init(rng, (max_len, d_model), std, dtype))
            self.table = None
        else:
            self.weight = None
            self.table = sinusoid_table(max_len, d_model).astype(dtype)  # (L, D) constant
        self.length = 0  # T and offset of the last forward: the rows of the table it read
        self.offset = 0

    def positions(self) -> np.ndarray:
        """The (L, D) table of position vectors in use."""
        return self.weight.data if self.weight is not None else self.table

    def forward(self, x: np.ndarray, offset: int = 0) -> np.ndarray:
        """x (B, T, D) -> x + P[offset : offset + T]; offset is used by cached decoding."""
        self.length, self.offset = x.shape[1], offset
        pe = self.positions()[offset : offset + x.shape[1]]  # (T, D)
        out = x if self.disabled else x + pe  # (B, T, D)
        watcher().forward(self.path, "positional", {"x": x, "pe": pe, "out": out},
                          kind=self.kind, disabled=self.disabled, params=self.param_names())
        return out

    def infer(self, x: np.ndarray, offset: int = 0) -> np.ndarray:
        return x if self.disabled else x + self.positions()[offset : offset + x.shape[1]]

    def backward(self, d_out: np.ndarray) -> np.ndarray:
        grad = None
        if self.weight is not None and not self.disabled:
            grad = np.zeros_like(self.weight.data)  # (L, D): rows past T get no gradient
            rows = slice(self.offset, self.offset + self.length)
            grad[rows] = d_out.sum(axis=0)  # every batch row used the same positions
            self.weight.grad += grad
        watcher().backward(self.path, "positional", {"d_out": d_out, "d_x": d_out,
                           "grad.weight": grad}, kind=self.kind, params=self.param_names())
        return d_out
