"""Linear (affine) layer: y = x W + b, and the tied output projection y = x E^T.

Shapes: N any leading dims (B, or B and T), I inputs, O outputs.
Weights are stored (I, O) so the forward is a plain `x @ w`; leading dims are flattened to one
so each call is a single large matrix product.
"""
from __future__ import annotations

import numpy as np

from ...fast import parallel
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


def forward_together(layers: list[Linear], x: np.ndarray) -> list[np.ndarray]:
    """x W_i + b_i for Linear layers that all read the same x, as ONE product
    x [W_1 W_2 ...] + [b_1 b_2 ...] (N, sum O_i): a wider matrix multiplies faster than
    several narrow ones, and the threads are handed one product instead of several.

    Attention's q, k and v projections use it. Each layer still keeps x for its backward and
    records its own step with its own output (a column block of the product, same numbers).
    """
    rec = active()
    n_in = x.shape[-1]
    weights = np.concatenate([layer.w.data for layer in layers], axis=1)  # (I, sum O)
    biases = np.concatenate([layer.b.data for layer in layers])  # (sum O,)
    out = parallel.matmul(x.reshape(-1, n_in), weights, bias=biases)  # (N, sum O)
    outs, start = [], 0
    for layer in layers:
        n_out = layer.w.data.shape[1]
        layer_out = out[:, start:start + n_out].reshape(*x.shape[:-1], n_out)  # a view
        start += n_out
        layer.x = x
        if rec:
            rec.forward(layer.path, "linear", {"x": x, "w": layer.w.data, "b": layer.b.data,
                        "out": layer_out}, formula=layer.formula, params=layer.param_names())
        outs.append(layer_out)
    return outs


def backward_together(layers: list[Linear], d_outs: np.ndarray) -> np.ndarray:
    """The backward of `forward_together`: d_outs (..., sum O_i) holds each layer's output
    gradient side by side. Adds each layer's weight and bias gradients; returns
    d_x = sum_i d_i W_i^T (..., I), computed as one product d_outs [W_1 W_2 ...]^T."""
    rec = active()
    x = layers[0].x
    n_in = x.shape[-1]
    weights = np.concatenate([layer.w.data for layer in layers], axis=1)  # (I, sum O)
    d2 = d_outs.reshape(-1, weights.shape[1])  # (N, sum O)
    grad_w, grad_b, d_x = parallel.affine_backward(x.reshape(-1, n_in), d2, weights, bias=True)
    start = 0
    for layer in layers:
        cols = slice(start, start + layer.w.data.shape[1])
        start = cols.stop
        layer.w.grad += grad_w[:, cols]
        layer.b.grad += grad_b[cols]
        if rec:  # this layer's own share of d_x, for the trace; the shares sum to d_x
            d_layer = d_outs[..., cols]
            rec.backward(layer.path, "linear", {"d_out": d_layer, "d_x": d_layer @ layer.w.data.T,
                         "grad.w": grad_w[:, cols], "grad.b": grad_b[cols]},
                         formula=f"{layer.formula}.backward", params=layer.param_names())
        layer.x = None
    return d_x.reshape(x.shape)
