"""Layer normalisation over the last axis, with PyTorch's definition.

Shapes: N rows (the leading dims B, T flattened), D normalised width.

    mean   = sum(x) / D                                   (N, 1)
    var    = sum((x - mean)^2) / D                        (N, 1) biased: divide by D
    rstd   = 1 / sqrt(var + eps)                          eps inside the sqrt
    x_hat  = (x - mean) * rstd                            (N, D)
    out    = x_hat * gamma + beta                         (N, D)

    g      = d_out * gamma
    d_x    = rstd * (g - mean(g) - x_hat * mean(g * x_hat))   means over D
    d_gamma = sum over rows of d_out * x_hat,  d_beta = sum over rows of d_out

A row's mean is one product with a (D, 1) column of 1/D: NumPy sums a short last axis row by
row, a product does all rows in one fast pass. When nothing records, the same steps run in
row blocks on the thread pool, in place (engine/fast/kernels.py; the rule: kernel_choice.py).
"""
from __future__ import annotations

import numpy as np

from ...fast import kernels
from ..param import Module
from .kernel_choice import use_kernels, watcher


class LayerNorm(Module):
    def __init__(self, path: str, d_model: int, eps: float, dtype: np.dtype):
        super().__init__(path)
        self.gamma = self.add_param("gamma", np.ones(d_model, dtype=dtype))
        self.beta = self.add_param("beta", np.zeros(d_model, dtype=dtype))
        self.eps = eps
        self.x_hat: np.ndarray | None = None  # (N, D) kept for backward
        self.rstd: np.ndarray | None = None  # (N, 1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (..., D) -> (..., D)."""
        if use_kernels():
            out, mean, rstd, x_hat = kernels.layernorm_forward(
                x.reshape(-1, x.shape[-1]), self.gamma.data, self.beta.data, self.eps)
        else:
            x2 = x.reshape(-1, x.shape[-1])  # (N, D)
            by_d = kernels.mean_vector(x2.shape[-1], x2.dtype)  # (D, 1) of 1/D
            mean = x2 @ by_d  # (N, 1)
            centred = x2 - mean  # (N, D)
            var = (centred * centred) @ by_d  # (N, 1)
            rstd = 1.0 / np.sqrt(var + self.eps)  # (N, 1)
            x_hat = centred * rstd  # (N, D)
            out = x_hat * self.gamma.data + self.beta.data  # (N, D)
        self.x_hat, self.rstd = x_hat, rstd
        lead = x.shape[:-1]
        watcher().forward(self.path, "layernorm", {
            "x": x, "mean": mean.reshape(*lead, 1), "rstd": rstd.reshape(*lead, 1),
            "x_hat": x_hat.reshape(x.shape), "gamma": self.gamma.data, "beta": self.beta.data,
            "out": out.reshape(x.shape)}, eps=self.eps, params=self.param_names())
        return out.reshape(x.shape)

    def backward(self, d_out: np.ndarray) -> np.ndarray:
        """d_out (..., D) -> d_x (..., D); adds into gamma's and beta's gradients."""
        x_hat, rstd, gamma = self.x_hat, self.rstd, self.gamma.data
        d2 = d_out.reshape(-1, d_out.shape[-1])  # (N, D)
        grad_gamma = np.einsum("nd,nd->d", d2, x_hat)  # (D,)
        grad_beta = d2.sum(axis=0)  # (D,)
        self.gamma.grad += grad_gamma
        self.beta.grad += grad_beta
        if use_kernels():
            d_x = kernels.layernorm_backward(d2, x_hat, rstd, gamma)
        else:
            by_d = kernels.mean_vector(d2.shape[-1], d2.dtype)  # (D, 1) of 1/D
            g = d2 * gamma  # (N, D)
            d_x = (g - g @ by_d - x_hat * ((g * x_hat) @ by_d)) * rstd  # (N, D)
        d_x = d_x.reshape(d_out.shape)
        watcher().backward(self.path, "layernorm", {"d_out": d_out, "d_x": d_x,
                           "grad.gamma": grad_gamma, "grad.beta": grad_beta},
                           params=self.param_names())
        self.x_hat = self.rstd = None
        return d_x

    def infer(self, x: np.ndarray) -> np.ndarray:
        """The forward with nothing saved or recorded (cached decoding): the kernel."""
        out = kernels.layernorm_rows(x.reshape(-1, x.shape[-1]), self.gamma.data,
                                     self.beta.data, self.eps)  # (N, D)
        return out.reshape(x.shape)
