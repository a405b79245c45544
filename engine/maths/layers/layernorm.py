"""Layer normalisation over the last axis, with PyTorch's definition.

y = (x - mean) / sqrt(var + eps) * gamma + beta, var biased (divide by D), eps inside the sqrt.
Shapes: N leading dims (B, T), D normalised width.
"""
from __future__ import annotations

import numpy as np

from ...fast import parallel
from ..param import Module
from ..recorder import active


def _mean_vector(x2: np.ndarray) -> np.ndarray:
    """(D, 1) of 1/D: `rows @ it` is each row's mean, one BLAS product instead of a reduction
    over a short last axis (which NumPy runs row by row)."""
    d = x2.shape[-1]
    return np.full((d, 1), 1.0 / d, dtype=x2.dtype)


class LayerNorm(Module):
    def __init__(self, path: str, d_model: int, eps: float, dtype: np.dtype):
        super().__init__(path)
        self.gamma = self.add_param("gamma", np.ones(d_model, dtype=dtype))
        self.beta = self.add_param("beta", np.zeros(d_model, dtype=dtype))
        self.eps = eps
        self.x_hat: np.ndarray | None = None
        self.rstd: np.ndarray | None = None

    def normalise(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """x (..., D) -> (out, mean, rstd, x_hat); saves nothing.

        Rows are independent, so blocks of rows of the (N, D) view run on separate threads.
        """
        x2 = x.reshape(-1, x.shape[-1])  # (N, D)
        out, x_hat = np.empty_like(x2), np.empty_like(x2)
        mean = np.empty((len(x2), 1), dtype=x.dtype)  # (N, 1)
        rstd = np.empty_like(mean)  # (N, 1)
        gamma, beta, by_d = self.gamma.data, self.beta.data, _mean_vector(x2)

        def block(rows: slice) -> None:
            centred = x_hat[rows]
            np.matmul(x2[rows], by_d, out=mean[rows])  # row means as a product: one fast pass
            np.subtract(x2[rows], mean[rows], out=centred)  # (n, D)
            square = np.multiply(centred, centred, out=out[rows])  # scratch: out is free yet
            var = square @ by_d  # (n, 1) biased variance
            var += self.eps
            np.sqrt(var, out=var)
            np.divide(1.0, var, out=rstd[rows])
            centred *= rstd[rows]  # x_hat: normalised, in place of the centred values
            np.multiply(centred, gamma, out=out[rows])
            out[rows] += beta

        parallel.for_each_block(len(x2), 8 * x2.size, block, parallel.ROW_ALIGN)  # 8 passes
        lead = x.shape[:-1]
        return (out.reshape(x.shape), mean.reshape(*lead, 1), rstd.reshape(*lead, 1),
                x_hat.reshape(x.shape))

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
        gamma, x_hat2, rstd2 = self.gamma.data, x_hat.reshape(-1, d), rstd.reshape(-1, 1)
        d_x = np.empty_like(d2)  # (N, D)

        by_d = _mean_vector(d2)

        def block(rows: slice) -> None:
            # d_x = rstd * (d_xhat - mean(d_xhat) - x_hat * mean(d_xhat * x_hat)), means over D
            d_xhat = np.multiply(d2[rows], gamma, out=d_x[rows])  # (n, D)
            mean_d = d_xhat @ by_d  # (n, 1)
            mean_dx = (d_xhat * x_hat2[rows]) @ by_d  # (n, 1)
            d_xhat -= mean_d
            d_xhat -= x_hat2[rows] * mean_dx
            d_xhat *= rstd2[rows]

        parallel.for_each_block(len(d2), 7 * d2.size, block, parallel.ROW_ALIGN)  # 7 passes
        d_x = d_x.reshape(d_out.shape)
        rec = active()
        if rec:
            rec.backward(self.path, "layernorm", {"d_out": d_out, "d_x": d_x,
                         "grad.gamma": grad_gamma, "grad.beta": grad_beta},
                         params=self.param_names())
        self.x_hat = self.rstd = None
        return d_x
