"""Layer normalisation over the last axis, with PyTorch's definition.

y = (x - mean) / sqrt(var + eps) * gamma + beta, var biased (divide by D), eps inside the sqrt.
Shapes: N leading dims (B, T), D normalised width.
"""
from __future__ import annotations

import numpy as np

from ..param import Module
from ..recorder import active


class LayerNorm(Module):
    def __init__(self, path: str, d_model: int, eps: float, dtype: np.dtype):
        super().__init__(path)
        self.gamma = self.add_param("gamma", np.ones(d_model, dtype=dtype))
        self.beta = self.add_param("beta", np.zeros(d_model, dtype=dtype))
        self.eps = eps
        self.x_hat: np.ndarray | None = None
        self.rstd: np.ndarray | None = None

    def normalise(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """x (..., D) -> (out, mean, rstd, x_hat); saves nothing."""
        mean = x.mean(axis=-1, keepdims=True)  # (..., 1)
        centred = x - mean  # (..., D)
        var = np.mean(centred * centred, axis=-1, keepdims=True)  # (..., 1) biased
        rstd = 1.0 / np.sqrt(var + self.eps)  # (..., 1)
        x_hat = centred
        x_hat *= rstd  # (..., D) normalised; reuses the centred buffer
        out = x_hat * self.gamma.data + self.beta.data  # (..., D)
        return out, mean, rstd, x_hat

    def infer(self, x: np.ndarray) -> np.ndarray:
        return self.normalise(x)[0]

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, mean, rstd, x_hat = self.normalise(x)
        self.x_hat, self.rstd = x_hat, rstd
        rec = active()
        if rec:
            rec.forward(self.path, "layernorm", {"x": x, "mean": mean, "rstd": rstd,
                        "x_hat": x_hat, "gamma": self.gamma.data, "beta": self.beta.data,
                        "out": out}, eps=self.eps, params=self.param_names())
        return out

    def backward(self, d_out: np.ndarray) -> np.ndarray:
        x_hat, rstd = self.x_hat, self.rstd
        d = d_out.shape[-1]
        d2 = d_out.reshape(-1, d)  # (N, D)
        grad_gamma = np.einsum("nd,nd->d", d2, x_hat.reshape(-1, d))  # (D,)
        grad_beta = d2.sum(axis=0)  # (D,)
        self.gamma.grad += grad_gamma
        self.beta.grad += grad_beta
        d_xhat = d_out * self.gamma.data  # (..., D)
        # d_x = rstd * (d_xhat - mean(d_xhat) - x_hat * mean(d_xhat * x_hat)), means over D
        mean_d = d_xhat.mean(axis=-1, keepdims=True)
        mean_dx = np.mean(d_xhat * x_hat, axis=-1, keepdims=True)
        d_x = d_xhat
        d_x -= mean_d
        d_x -= x_hat * mean_dx
        d_x *= rstd
        rec = active()
        if rec:
            rec.backward(self.path, "layernorm", {"d_out": d_out, "d_x": d_x,
                         "grad.gamma": grad_gamma, "grad.beta": grad_beta},
                         params=self.param_names())
        self.x_hat = self.rstd = None
        return d_x
