"""Position-wise feed-forward network: fc2(act(fc1(x))), the same MLP at every position.

Shapes: B batch, T length, D model width, F hidden width (d_ff, usually 4 D).
"""
from __future__ import annotations

import numpy as np

from ...fast import kernels
from ..param import Module
from .kernel_choice import use_kernels, watcher
from .linear import Linear

_GELU_C = np.sqrt(2.0 / np.pi)
_GELU_A = 0.044715


class Activation(Module):
    """ReLU, or GELU in its tanh form:

        gelu(x)  = 0.5 x (1 + tanh(u)),   u = c (x + a x^3) = (c a x^2 + c) x
        gelu'(x) = 0.5 (1 + t + x (1 - t^2) c (1 + 3 a x^2)),   t = tanh(u)

    with c = sqrt(2/pi), a = 0.044715. When nothing records, GELU runs the same steps in row
    blocks on the thread pool, in place (engine/fast/kernels.py; the rule: kernel_choice.py).
    """

    def __init__(self, path: str, kind: str):
        super().__init__(path)
        self.kind = kind
        self.x: np.ndarray | None = None
        self.tanh: np.ndarray | None = None  # GELU only: tanh(u), reused by backward

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (B,T,F) -> (B,T,F)."""
        self.x = x  # (B,T,F)
        c, ca = x.dtype.type(_GELU_C), x.dtype.type(_GELU_C * _GELU_A)
        if self.kind == "relu":
            out = np.maximum(x, 0)
        elif use_kernels():
            out, self.tanh = kernels.gelu_forward(x, c, ca)
        else:
            one, half = x.dtype.type(1), x.dtype.type(0.5)  # typed: temporaries are reused
            t = (x * x * ca + c) * x  # u
            np.tanh(t, out=t)  # t = tanh(u), in u's place
            out = (t + one) * x * half  # (B,T,F)
            self.tanh = t
        watcher().forward(self.path, self.kind, {"x": x, "out": out})
        return out

    def backward(self, d_out: np.ndarray) -> np.ndarray:
        """d_out (B,T,F) -> d_x (B,T,F)."""
        x, t = self.x, self.tanh
        c, c3a = x.dtype.type(_GELU_C), x.dtype.type(3 * _GELU_C * _GELU_A)
        if self.kind == "relu":
            d_x = d_out * (x > 0)
        elif use_kernels():
            d_x = kernels.gelu_backward(x, t, d_out, c, c3a)
        else:
            one, half = x.dtype.type(1), x.dtype.type(0.5)  # typed: temporaries are reused
            sech2 = t * t  # 1 - t^2 = sech^2(u), the derivative of tanh
            np.subtract(one, sech2, out=sech2)
            d_x = ((x * x * c3a + c) * sech2 * x + t + one) * d_out * half  # (B,T,F)
        watcher().backward(self.path, self.kind, {"d_out": d_out, "d_x": d_x})
        self.x = self.tanh = None
        return d_x

    def infer(self, x: np.ndarray) -> np.ndarray:
        """The forward with nothing saved or recorded (cached decoding): the kernel."""
        if self.kind == "relu":
            return np.maximum(x, 0)
        return kernels.gelu_rows(x, x.dtype.type(_GELU_C), x.dtype.type(_GELU_C * _GELU_A))


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
        return self.fc2.infer(self.act.infer(self.fc1.infer(x)))

    def backward(self, d_out: np.ndarray) -> np.ndarray:
        return self.fc1.backward(self.act.backward(self.fc2.backward(d_out)))
