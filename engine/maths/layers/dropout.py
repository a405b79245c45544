"""Inverted dropout and the explicit residual add.

Dropout zeroes each element with probability p during training and scales the survivors by
1/(1-p), so the expected value is unchanged and evaluation needs no rescaling: in eval mode (or
with p = 0) it is the identity.
"""
from __future__ import annotations

import numpy as np

from ...fast import kernels
from ..param import Module
from .kernel_choice import use_kernels, watcher


class Dropout(Module):
    def __init__(self, path: str, p: float, rng: np.random.Generator):
        super().__init__(path)
        self.p = p
        self.rng = rng  # the model's dropout generator: seeded, so runs repeat
        self.keep_scaled: np.ndarray | None = None  # mask / (1 - p), or None when identity

    @property
    def active(self) -> bool:
        """True when forward draws a mask (training with p > 0); otherwise it is the identity."""
        return self.training and self.p > 0

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.active:
            keep = self.rng.random(x.shape, dtype=np.float64 if x.dtype == np.float64 else np.float32)
            self.keep_scaled = (keep >= self.p).astype(x.dtype) / x.dtype.type(1.0 - self.p)
            out = x * self.keep_scaled
        else:
            self.keep_scaled = None
            out = x
        watcher().forward(self.path, "dropout", {"x": x, "mask": self.keep_scaled, "out": out},
                          p=self.p, active=self.keep_scaled is not None)
        return out

    def backward(self, d_out: np.ndarray) -> np.ndarray:
        d_x = d_out if self.keep_scaled is None else d_out * self.keep_scaled
        watcher().backward(self.path, "dropout", {"d_out": d_out, "d_x": d_x}, p=self.p,
                           active=self.keep_scaled is not None)
        self.keep_scaled = None
        return d_x


class ResidualAdd(Module):
    """out = x + f(x): the skip connection, a step of its own so the trace shows it.

    With the `no_residual` break switch, out = f(x): gradients must then pass through every
    sublayer, and a deep stack trains far worse.
    """

    def __init__(self, path: str, disabled: bool = False):
        super().__init__(path)
        self.disabled = disabled

    def forward(self, x: np.ndarray, fx: np.ndarray) -> np.ndarray:
        if self.disabled:
            out = fx.copy()
        else:
            out = kernels.add(x, fx) if use_kernels() else x + fx  # (B,T,D)
        watcher().forward(self.path, "residual", {"x": x, "fx": fx, "out": out},
                          disabled=self.disabled)
        return out

    def backward(self, d_out: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """Returns (d_x, d_fx); d_x is None when the skip path is cut."""
        d_x = None if self.disabled else d_out
        watcher().backward(self.path, "residual", {"d_out": d_out, "d_x": d_x, "d_fx": d_out})
        return d_x, d_out
