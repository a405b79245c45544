"""Linear (affine) layer: y = x W + b, and the tied output projection y = x E^T.

Shapes: N rows (the leading dims, B or B and T, flattened), I inputs, O outputs.
Weights are stored (I, O) so the forward is a plain `x @ w`; leading dims are flattened to one
so each call is a single large matrix product.

    out    = x W + b                    (N, O)
    d_W    = x^T d_out                  (I, O)
    d_b    = sum over rows of d_out     (O,)
    d_x    = d_out W^T                  (N, I)

When nothing records, the same products run in row blocks on the thread pool
(engine/fast/kernels.py; the rule: kernel_choice.py).
"""
from __future__ import annotations

import numpy as np

from ...fast import kernels
from ..param import Module, Param
from ..recorder import Later
from .kernel_choice import use_kernels, watcher


def affine(x2: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """x2 (N, I) @ w (I, O) + b (O,) -> (N, O): the formula, or its kernel (same bits)."""
    if use_kernels():
        return kernels.linear_forward(x2, w, b)
    return x2 @ w if b is None else x2 @ w + b


def input_gradient(d_out: np.ndarray, w: np.ndarray) -> np.ndarray:
    """d_x = d_out W^T: d_out (..., O), w (I, O) -> (..., I)."""
    return d_out @ w.T


def affine_backward(x2: np.ndarray, d2: np.ndarray, w: np.ndarray, bias: bool):
    """-> (grad_w = x2^T d2 (I,O), grad_b = column sums of d2 (O,) or None, d_x = d2 w^T (N,I))."""
    if use_kernels():
        return kernels.linear_backward(x2, d2, w, bias)
    return x2.T @ d2, d2.sum(axis=0) if bias else None, d2 @ w.T


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
        """x (..., I) -> (..., O)."""
        self.x = x  # kept for the weight gradient
        bias = None if self.b is None else self.b.data
        out = affine(x.reshape(-1, x.shape[-1]), self.w.data, bias)  # (N, O)
        out = out.reshape(*x.shape[:-1], out.shape[-1])
        watcher().forward(self.path, "linear", {"x": x, "w": self.w.data, "b": bias, "out": out},
                          formula=self.formula, params=self.param_names())
        return out

    def backward(self, d_out: np.ndarray) -> np.ndarray:
        """d_out (..., O) -> d_x (..., I); adds into w's and b's gradients."""
        n_in, n_out = self.w.data.shape
        grad_w, grad_b, d_x = affine_backward(self.x.reshape(-1, n_in), d_out.reshape(-1, n_out),
                                              self.w.data, self.b is not None)
        self.w.grad += grad_w  # (I, O)
        if grad_b is not None:
            self.b.grad += grad_b  # (O,)
        d_x = d_x.reshape(self.x.shape)  # (..., I)
        watcher().backward(self.path, "linear", {"d_out": d_out, "d_x": d_x, "grad.w": grad_w,
                           "grad.b": grad_b}, formula=f"{self.formula}.backward",
                           params=self.param_names())
        self.x = None
        return d_x

    def infer(self, x: np.ndarray) -> np.ndarray:
        """The forward with nothing saved or recorded (cached decoding): the kernel."""
        n_in, n_out = self.w.data.shape
        out = kernels.affine_rows(x.reshape(-1, n_in), self.w.data,
                                  None if self.b is None else self.b.data)  # (N, O)
        return out.reshape(*x.shape[:-1], n_out)


class TiedOutput(Module):
    """logits = x @ E^T, reusing the token embedding E (V, D) as the output projection."""

    def __init__(self, path: str, embedding: Param):
        super().__init__(path)
        self.embedding = embedding  # shared Param: its grad receives both uses
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (B,T,D) -> logits (B,T,V)."""
        self.x = x
        emb = self.embedding.data  # (V, D)
        out = affine(x.reshape(-1, emb.shape[1]), emb.T, None).reshape(*x.shape[:-1], emb.shape[0])
        watcher().forward(self.path, "linear", {"x": x, "w": emb.T, "out": out},
                          formula="logits", params={"embedding": self.embedding.name})
        return out

    def backward(self, d_out: np.ndarray) -> np.ndarray:
        """d_out (B,T,V) -> d_x (B,T,D); adds into the embedding's gradient."""
        emb = self.embedding.data  # (V, D)
        # As a Linear with w = E^T (D, V): grad_w = x^T d_out is grad_E transposed.
        grad_w, _, d_x = affine_backward(self.x.reshape(-1, emb.shape[1]),
                                         d_out.reshape(-1, emb.shape[0]), emb.T, bias=False)
        grad_e = grad_w.T  # (V, D)
        self.embedding.grad += grad_e
        d_x = d_x.reshape(self.x.shape)  # (B,T,D) = d_out E
        watcher().backward(self.path, "linear", {"d_out": d_out, "d_x": d_x,
                           "grad.embedding": grad_e}, formula="logits.backward",
                           params={"embedding": self.embedding.name})
        self.x = None
        return d_x

    def infer(self, x: np.ndarray) -> np.ndarray:
        emb = self.embedding.data  # (V, D)
        out = kernels.affine_rows(x.reshape(-1, emb.shape[1]), emb.T, None)  # (N, V)
        return out.reshape(*x.shape[:-1], emb.shape[0])


def forward_together(layers: list[Linear], x: np.ndarray) -> list[np.ndarray]:
    """x W_i + b_i for Linear layers that all read the same x, as ONE product
    x [W_1 W_2 ...] + [b_1 b_2 ...] (N, sum O_i): a wider matrix multiplies faster than
    several narrow ones (GPT-2's attention projects q, k and v this way).

    Each layer still keeps x for its backward and records its own step with its own output
    (a column block of the product, the same numbers).
    """
    rec = watcher()
    weights = np.concatenate([layer.w.data for layer in layers], axis=1)  # (I, sum O)
    biases = np.concatenate([layer.b.data for layer in layers])  # (sum O,)
    out = affine(x.reshape(-1, x.shape[-1]), weights, biases)  # (N, sum O)
    outs, start = [], 0
    for layer in layers:
        n_out = layer.w.data.shape[1]
        layer_out = out[:, start:start + n_out].reshape(*x.shape[:-1], n_out)  # a view
        start += n_out
        layer.x = x
        rec.forward(layer.path, "linear", {"x": x, "w": layer.w.data, "b": layer.b.data,
                    "out": layer_out}, formula=layer.formula, params=layer.param_names())
        outs.append(layer_out)
    return outs


def backward_together(layers: list[Linear], d_outs: np.ndarray) -> np.ndarray:
    """The backward of `forward_together`: d_outs (..., sum O_i) holds each layer's output
    gradient side by side. Adds each layer's weight and bias gradients; returns
    d_x = sum_i d_i W_i^T (..., I), computed as one product d_outs [W_1 W_2 ...]^T."""
    rec = watcher()
    x = layers[0].x
    weights = np.concatenate([layer.w.data for layer in layers], axis=1)  # (I, sum O)
    d2 = d_outs.reshape(-1, weights.shape[1])  # (N, sum O)
    grad_w, grad_b, d_x = affine_backward(x.reshape(-1, x.shape[-1]), d2, weights, bias=True)
    start = 0
    for layer in layers:
        cols = slice(start, start + layer.w.data.shape[1])
        start = cols.stop
        layer.w.grad += grad_w[:, cols]
        layer.b.grad += grad_b[cols]
        if not use_kernels():  # the trace shows each layer's own share of d_x (they sum to it),
            d_layer = d_outs[..., cols]  # computed when a reader asks: the step needs only d_x
            rec.backward(layer.path, "linear", {"d_out": d_layer,
                         "d_x": Later(input_gradient, d_layer, layer.w.data),
                         "grad.w": grad_w[:, cols], "grad.b": grad_b[cols]},
                         formula=f"{layer.formula}.backward", params=layer.param_names())
        layer.x = None
    return d_x.reshape(x.shape)
