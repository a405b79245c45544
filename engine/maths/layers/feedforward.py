"""Position-wise feed-forward network: fc2(act(fc1(x))), the same MLP at every position.

Shapes: B batch, T length, D model width, F hidden width (d_ff, usually 4 D).
"""
from __future__ import annotations

import numpy as np

from ...fast import parallel
from ..param import Module
from ..recorder import active
from .linear import Linear

_GELU_C = np.sqrt(2.0 / np.pi)
_GELU_A = 0.044715


def _gelu(x: np.ndarray, out: np.ndarray, tanh: np.ndarray) -> None:
    """out = 0.5 x (1 + tanh(u)), u = c (x + a x^3); also keeps tanh(u) for the backward."""
    c, ca = x.dtype.type(_GELU_C), x.dtype.type(_GELU_C * _GELU_A)
    u = np.multiply(x, x, out=tanh)  # build u = x (c + c a x^2) in the tanh buffer
    u *= ca
    u += c
    u *= x
    np.tanh(u, out=tanh)
    np.add(tanh, 1, out=out)
    out *= x
    out *= 0.5


def _gelu_backward(x: np.ndarray, tanh: np.ndarray, d_out: np.ndarray, d_x: np.ndarray) -> None:
    """d_x = d_out * 0.5 (1 + t + x (1 - t^2) c (1 + 3 a x^2)), t = tanh(u)."""
    c, c3a = x.dtype.type(_GELU_C), x.dtype.type(3 * _GELU_C * _GELU_A)
    du = np.multiply(x, x, out=d_x)  # du/dx = c (1 + 3 a x^2) = c + 3 c a x^2
    du *= c3a
    du += c
    sech2 = tanh * tanh  # 1 - t^2 = sech^2(u)
    np.subtract(1, sech2, out=sech2)
    du *= sech2
    du *= x
    du += tanh
    du += 1
    du *= d_out
    du *= 0.5


class Activation(Module):
    """ReLU, or GELU in its tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""

    def __init__(self, path: str, kind: str):
        super().__init__(path)
        self.kind = kind
        self.x: np.ndarray | None = None
        self.tanh: np.ndarray | None = None  # GELU only: tanh(u), reused by backward

    def apply(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """x (B,T,F) -> (out, tanh(u) for GELU's backward or None); saves nothing."""
        if self.kind == "relu":
            return np.maximum(x, 0), None
        out, tanh = np.empty_like(x), np.empty_like(x)
        parallel.for_each_block(len(x), 8 * x.size,  # 8 passes
                                lambda rows: _gelu(x[rows], out[rows], tanh[rows]))
        return out, tanh

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x  # (B, T, F)
        out, self.tanh = self.apply(x)
        rec = active()
        if rec:
            rec.forward(self.path, self.kind, {"x": x, "out": out})
        return out

    def backward(self, d_out: np.ndarray) -> np.ndarray:
        x = self.x
        if self.kind == "relu":
            d_x = d_out * (x > 0)
        else:
            d_x = np.empty_like(x)
            parallel.for_each_block(len(x), 11 * x.size, lambda rows: _gelu_backward(
                x[rows], self.tanh[rows], d_out[rows], d_x[rows]))
        rec = active()
        if rec:
            rec.backward(self.path, self.kind, {"d_out": d_out, "d_x": d_x})
        self.x = self.tanh = None
        return d_x


class FeedForward(Module):
    """fc1: D -> F, activation, fc2: F -> D."""

    def __init__(self, path: str, d_model: int, d_ff: int, activation: str,
                 rng: np.random.Generator, std: float, dtype: np.dtype):
        super().__init__(path)
        self.fc1 = self.add_child("fc1", Linear(self.child_path("fc1"), d_model, d_ff, rng, std, dtype))
        self.act = self.add_child("act", Activation(self.child_path("act"), activation))
        self.fc2 = self.add_child("fc2", Linear(self.child_path("fc2"), d_ff, d_model, rng, std, dtype))

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.fc2.forward(self.act.forward(self.fc1.forward(x)))  # (B,T,D)->(B,T,F)->(B,T,D)

    def infer(self, x: np.ndarray) -> np.ndarray:
        return self.fc2.infer(self.act.apply(self.fc1.infer(x))[0])

    def backward(self, d_out: np.ndarray) -> np.ndarray:
        return self.fc1.backward(self.act.backward(self.fc2.backward(d_out)))
