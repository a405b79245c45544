"""Linear (affine) layer: y = x W + b, and the tied output projection y = x E^T.

Shapes: N any leading dims (B, or B and T), I inputs, O outputs.
Weights are stored (I, O) so the forward is a plain `x @ w`; leading dims are flattened to one
so each call is a single large matrix product.
"""
from __future__ import annotations

import numpy as np

from .. import parallel
from ..param import Module, Param
from ..recorder import active


class Linear(Module):
    """y = x @ w + b with w (I, O), b (O,)."""

    def __init__(self, path: str, n_in: int, n_out: int, rng: np.random.Generator,
                 std: float, dtype: np.dtype, bias: bool = True, formula: str = "linear"):
        super().__init__(path)
        self.w = self.add_param("w", (rng.standard_normal((n_in, n_out)) * std).astype(dtype))
        self.b = self.add_param("b", np.zeros(n_out, dtype=dtype)) if bias else None
        self.formula = formula  # "linear", or "logits" for the final projection
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x  # (..., I) kept for the weight gradient
        out = self.infer(x)  # (..., O)
        rec = active()
        if rec:
            rec.forward(self.path, "linear", {"x": x, "w": self.w.data,
                        "b": None if self.b is None else self.b.data, "out": out},
                        formula=self.formula, params=self.param_names())
        return out

    def infer(self, x: np.ndarray) -> np.ndarray:
        """The forward's arithmetic with nothing saved or recorded (cached decoding)."""
        n_in, n_out = self.w.data.shape
        bias = None if self.b is None else self.b.data
        out = parallel.matmul(x.reshape(-1, n_in), self.w.data, bias=bias)  # (N, O)
        return out.reshape(*x.shape[:-1], n_out)

    def backward(self, d_out: np.ndarray) -> np.ndarray:
        n_in, n_out = self.w.data.shape
        x2 = self.x.reshape(-1, n_in)  # (N, I)
        d2 = d_out.reshape(-1, n_out)  # (N, O)
        grad_w, grad_b, d_x = parallel.affine_backward(x2, d2, self.w.data, self.b is not None)
        self.w.grad += grad_w  # (I, O) = x2.T @ d2
        if grad_b is not None:
            self.b.grad += grad_b  # (O,) = sum of d2 over rows
        d_x = d_x.reshape(self.x.shape)  # (..., I) = d2 @ w.T
        rec = active()
        if rec:
            rec.backward(self.path, "linear", {"d_out": d_out, "d_x": d_x, "grad.w": grad_w,
                         "grad.b": grad_b}, formula=f"{self.formula}.backward",
                         params=self.param_names())
        self.x = None
        return d_x


class TiedOutput(Module):
    """logits = x @ E^T, reusing the token embedding E (V, D) as the output projection."""

    def __init__(self, path: str, embedding: Param):
        super().__init__(path)
        self.embedding = embedding  # shared Param: its grad receives both uses
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x  # (B, T, D)
        emb = self.embedding.data  # (V, D)
        out = self.infer(x)  # (B,T,V)
        rec = active()
        if rec:
            rec.forward(self.path, "linear", {"x": x, "w": emb.T, "out": out},
                        formula="logits", params={"embedding": self.embedding.name})
        return out

    def infer(self, x: np.ndarray) -> np.ndarray:
        emb = self.embedding.data  # (V, D)
        out = parallel.matmul(x.reshape(-1, emb.shape[1]), emb.T)  # (N, V)
        return out.reshape(*x.shape[:-1], emb.shape[0])

    def backward(self, d_out: np.ndarray) -> np.ndarray:
        emb = self.embedding.data  # (V, D)
        d2 = d_out.reshape(-1, emb.shape[0])  # (N, V)
        # As a Linear with w = E^T (D, V): grad_w = x.T @ d_out is grad_E transposed.
        grad_w, _, d_x = parallel.affine_backward(self.x.reshape(-1, emb.shape[1]), d2, emb.T,
                                                  bias=False)
        grad_e = grad_w.T  # (V, D)
        self.embedding.grad += grad_e
        d_x = d_x.reshape(self.x.shape)  # (B, T, D) = d_out @ E
        rec = active()
        if rec:
            rec.backward(self.path, "linear", {"d_out": d_out, "d_x": d_x,
                         "grad.embedding": grad_e}, formula="logits.backward",
                         params={"embedding": self.embedding.name})
        self.x = None
        return d_x
