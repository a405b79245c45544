"""The fast versions of the layers' formulas: the same arithmetic, run for speed.

Each layer in engine/maths/layers reads as its formula, one fresh array per step, and emits a
trace event per op. When nothing records, the layer runs the kernel here instead (the one rule
is `engine.maths.layers.kernel_choice.use_kernels`). A kernel computes the same expressions in
the same order, so it gives the same bits as the formula (tests/engine/test_trace.py's traced
== untraced, tests/engine/test_parallel.py on one and two threads), but it

- works in row blocks on the thread pool (engine.fast.parallel): rows are independent, and a
  block of a product starts at a multiple of ROW_ALIGN rows, so splitting changes no bit;
- overwrites one preallocated buffer step after step instead of making a new array per step;
- runs attention's whole chain (scores -> scale -> mask -> softmax -> attend) on one block of
  batch rows at a time, so the block's scores stay in cache and the pool is handed one job;
- decodes with a key/value cache preallocated to the model's length and filled in place
  (`KVCache`), on the calling thread (batch 1 is too small to share out).

Shapes: B batch, H heads, T queries, S keys, K head width, N rows (B*T), D width.
This module imports nothing of engine.maths: it works on plain arrays.
"""
from __future__ import annotations

import numpy as np

from . import parallel
from .parallel import MACS_PER_PASS, ROW_ALIGN, for_each_block


def _rows_of(mask: np.ndarray | None, rows: slice) -> np.ndarray | None:
    """The batch rows of a mask that is (B, ...) or broadcast over the batch (1, ...)."""
    return mask if mask is None or mask.shape[0] == 1 else mask[rows]


_ones_columns: dict[tuple[int, np.dtype], np.ndarray] = {}


def ones_column(n: int, dtype) -> np.ndarray:
    """(n, 1) of ones (shared, never written): `rows @ it` is each row's sum."""
    key = (n, dtype)
    if key not in _ones_columns:
        _ones_columns[key] = np.ones((n, 1), dtype=dtype)
        _ones_columns[key].flags.writeable = False
    return _ones_columns[key]


# -- softmax, in place ---------------------------------------------------------------------------
def softmax_(x: np.ndarray, axis: int) -> np.ndarray:
    """x <- softmax(x) along `axis`, the formula's steps in place; returns x."""
    x -= x.max(axis=axis, keepdims=True)
    np.exp(x, out=x)
    if axis in (-1, x.ndim - 1):  # row sums as one product with a ones vector, as the formula
        total = x @ ones_column(x.shape[-1], x.dtype)
    else:
        total = x.sum(axis=axis, keepdims=True)
    x *= np.reciprocal(total, out=total)
    return x


def softmax_backward_(weights: np.ndarray, d_weights: np.ndarray, axis: int) -> np.ndarray:
    """d_weights <- w * (d_w - sum(d_w * w)) along `axis`; returns it (now d_scores)."""
    if axis in (-1, weights.ndim - 1):  # one pass, no (..., S) temporary
        dot = np.einsum("...s,...s->...", d_weights, weights)[..., None]
    else:
        dot = np.sum(d_weights * weights, axis=axis, keepdims=True)
    d_weights -= dot
    d_weights *= weights
    return d_weights


def zero_blind_rows_(weights: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """Zero, in place, the rows (B,H,T,S) of queries that may see no key; returns weights."""
    if keep is not None:
        blind = ~keep.any(axis=-1, keepdims=True)  # (B|1,H|1,T|1,1)
        if blind.any():
            np.copyto(weights, weights.dtype.type(0), where=blind)
    return weights


# -- attention -----------------------------------------------------------------------------------
def _normalise_(scores, keep, scale, axis, fill):
    """scores <- softmax(mask(scores * scale)) with blind rows zeroed, all in place."""
    if scale is not None:
        scores *= scores.dtype.type(scale)
    if keep is not None:
        np.copyto(scores, scores.dtype.type(fill), where=~keep)
    return zero_blind_rows_(softmax_(scores, axis), keep)


def attention_forward(q, k, v, keep, scale, axis, fill, context, drop=None):
    """q (B,H,T,K), k and v (B,H,S,K) -> (weights, dropped) (B,H,T,S); writes context (B,H,T,K).

    Without dropout (`drop` None), one block of batch rows at a time, start to finish on one
    thread: scores, scale (None: not applied), mask, softmax, attend, in one (B,H,T,S) buffer.
    With it, the weights in blocks, then `drop` over all of them (one random draw), then attend.
    """
    weights = np.empty(q.shape[:3] + k.shape[2:3], dtype=q.dtype)  # (B,H,T,S)

    def block(rows: slice) -> None:
        np.matmul(q[rows], k[rows].transpose(0, 1, 3, 2), out=weights[rows])
        _normalise_(weights[rows], _rows_of(keep, rows), scale, axis, fill)
        if drop is None:
            np.matmul(weights[rows], v[rows], out=context[rows])

    products = (1 if drop else 2) * weights.size * q.shape[-1] // MACS_PER_PASS
    for_each_block(len(weights), products + 7 * weights.size, block)
    if drop is None:
        return weights, weights
    dropped = drop(weights)
    parallel.matmul(dropped, v, out=context)
    return weights, dropped


def attention_backward(q, k, v, weights, dropped, keep, scale, axis, fill, d_context, d_q, d_k,
                       d_v, drop_backward=None):
    """The backward of `attention_forward` block by block: d_weights and d_v, then softmax,
    mask and scale backward in place, then d_q and d_k. Writes d_q, d_k, d_v (B,H,T|S,K).
    With dropout, d_weights and d_v first over all rows, then `drop_backward`, then blocks.
    (`fill` is the forward's; a constant, it passes no gradient.)"""
    if drop_backward is None:
        d_scores = np.empty_like(weights)  # (B,H,T,S): d_weights first, then d_scores
    else:
        d_dropped = parallel.matmul(d_context, v.transpose(0, 1, 3, 2))  # (B,H,T,S)
        parallel.matmul(dropped.transpose(0, 1, 3, 2), d_context, out=d_v)
        d_scores = drop_backward(d_dropped)

    def block(rows: slice) -> None:
        d_s = d_scores[rows]
        if drop_backward is None:
            np.matmul(d_context[rows], v[rows].transpose(0, 1, 3, 2), out=d_s)
            np.matmul(weights[rows].transpose(0, 1, 3, 2), d_context[rows], out=d_v[rows])
        softmax_backward_(weights[rows], d_s, axis)
        block_keep = _rows_of(keep, rows)
        if block_keep is not None:  # the fill is a constant: masked scores get no gradient
            np.copyto(d_s, d_s.dtype.type(0), where=~block_keep)
        if scale is not None:
            d_s *= d_s.dtype.type(scale)
        np.matmul(d_s, k[rows], out=d_q[rows])
        np.matmul(d_s.transpose(0, 1, 3, 2), q[rows], out=d_k[rows])

    products = 4 * weights.size * q.shape[-1] // MACS_PER_PASS
    for_each_block(len(weights), products + 5 * weights.size, block)


# -- layer normalisation -------------------------------------------------------------------------
_mean_vectors: dict[tuple[int, np.dtype], np.ndarray] = {}


def mean_vector(d: int, dtype) -> np.ndarray:
    """(D, 1) of 1/D (shared, never written): `rows @ it` is each row's mean as one product."""
    key = (d, dtype)
    if key not in _mean_vectors:
        _mean_vectors[key] = np.full((d, 1), 1.0 / d, dtype=dtype)
        _mean_vectors[key].flags.writeable = False
    return _mean_vectors[key]


def _layernorm_rows(x, gamma, beta, eps, out, x_hat, mean, rstd) -> None:
    """The formula's steps on rows x (n,D), into out, x_hat (n,D), mean, rstd (n,1)."""
    by_d = mean_vector(x.shape[-1], x.dtype)
    np.matmul(x, by_d, out=mean)
    centred = np.subtract(x, mean, out=x_hat)  # (n, D)
    square = np.multiply(centred, centred, out=out)  # scratch: out is free yet
    var = square @ by_d  # (n, 1) biased variance
    var += eps
    np.sqrt(var, out=var)
    np.divide(1.0, var, out=rstd)
    centred *= rstd  # x_hat, in place of the centred values
    np.multiply(centred, gamma, out=out)
    out += beta


def layernorm_forward(x2, gamma, beta, eps):
    """x2 (N,D) -> out, mean (N,1), rstd (N,1), x_hat (N,D), the formula's steps in row blocks."""
    out, x_hat = np.empty_like(x2), np.empty_like(x2)
    mean = np.empty((len(x2), 1), dtype=x2.dtype)  # (N, 1)
    rstd = np.empty_like(mean)  # (N, 1)
    for_each_block(len(x2), 8 * x2.size, lambda rows: _layernorm_rows(  # 8 passes
        x2[rows], gamma, beta, eps, out[rows], x_hat[rows], mean[rows], rstd[rows]),
        ROW_ALIGN)
    return out, mean, rstd, x_hat


def layernorm_backward(d2, x_hat, rstd, gamma):
    """d2, x_hat (N,D), rstd (N,1) -> d_x (N,D) in row blocks, the formula's steps in place."""
    d_x = np.empty_like(d2)  # (N, D)
    by_d = mean_vector(d2.shape[-1], d2.dtype)  # (D, 1)

    def block(rows: slice) -> None:
        g = np.multiply(d2[rows], gamma, out=d_x[rows])  # (n, D)
        mean_g = g @ by_d  # (n, 1)
        mean_gx = (g * x_hat[rows]) @ by_d  # (n, 1)
        g -= mean_g
        g -= x_hat[rows] * mean_gx
        g *= rstd[rows]

    for_each_block(len(d2), 7 * d2.size, block, ROW_ALIGN)  # 7 passes
    return d_x


# -- GELU (tanh form) ----------------------------------------------------------------------------
def _gelu_rows(x, c, ca, out, tanh) -> None:
    """out = (1 + t) x / 2 and t = tanh(u), u = (x x ca + c) x, into out and tanh."""
    u = np.multiply(x, x, out=tanh)  # build u in the tanh buffer
    u *= ca
    u += c
    u *= x
    np.tanh(u, out=tanh)
    np.add(tanh, 1, out=out)
    out *= x
    out *= 0.5


def gelu_forward(x, c, ca):
    """x (N,...,F) -> (out, t = tanh(u)), the formula's steps in row blocks."""
    out, tanh = np.empty_like(x), np.empty_like(x)
    for_each_block(len(x), 8 * x.size,  # 8 passes
                   lambda rows: _gelu_rows(x[rows], c, ca, out[rows], tanh[rows]))
    return out, tanh


def gelu_backward(x, tanh, d_out, c, c3a):
    """d_x = ((x x c3a + c) (1 - t t) x + t + 1) d_out / 2, in row blocks."""
    d_x = np.empty_like(x)

    def block(rows: slice) -> None:
        xr, t = x[rows], tanh[rows]
        du = np.multiply(xr, xr, out=d_x[rows])
        du *= c3a
        du += c
        sech2 = t * t
        np.subtract(1, sech2, out=sech2)
        du *= sech2
        du *= xr
        du += t
        du += 1
        du *= d_out[rows]
        du *= 0.5

    for_each_block(len(x), 11 * x.size, block)  # 11 passes
    return d_x


# -- sums ----------------------------------------------------------------------------------------
def add(a, b):
    """a + b for two arrays of one shape (N, ...), in row blocks (a residual connection)."""
    return parallel.add(a, b)


# -- linear ----------------------------------------------------------------------------------
def linear_forward(x2, w, b):
    """x2 (N,I) @ w (I,O) + b, in row blocks (each adds the bias to its rows while in cache)."""
    return parallel.matmul(x2, w, bias=b)


def linear_backward(x2, d2, w, bias: bool):
    """-> grad_w (I,O), grad_b (O,) or None, d_x (N,I): three products in one hand-off."""
    return parallel.affine_backward(x2, d2, w, bias)


# -- decoding: a few rows on the calling thread ---------------------------------------------------
# Generating at batch 1 runs one row at a time: the thread pool's wrappers would cost more than
# the work. These run the same steps directly, with nothing kept for backward; given many rows
# (a whole batch of sources to encode) they hand over to the row-block kernels above.
DIRECT_ROWS = 4 * ROW_ALIGN  # below this, a product's rows make one block anyway


def affine_rows(x2, w, b):
    """x2 (n,I) @ w (I,O) + b (O,) or None -> (n,O)."""
    if len(x2) >= DIRECT_ROWS:
        return linear_forward(x2, w, b)
    out = x2 @ w
    if b is not None:
        out += b
    return out


def layernorm_rows(x2, gamma, beta, eps):
    """x2 (n,D) -> out (n,D): the same steps (and bits) as layernorm_forward."""
    if len(x2) >= DIRECT_ROWS:
        return layernorm_forward(x2, gamma, beta, eps)[0]
    by_d = mean_vector(x2.shape[-1], x2.dtype)
    out = x2 - x2 @ by_d  # centred (n, D)
    var = (out * out) @ by_d  # (n, 1)
    var += var.dtype.type(eps)
    np.sqrt(var, out=var)
    out *= np.divide(1.0, var, out=var)  # x_hat
    out *= gamma
    out += beta
    return out


def gelu_rows(x, c, ca):
    """x -> gelu(x): the same steps (and bits) as gelu_forward."""
    if 8 * x.size >= parallel.MIN_WORK:
        return gelu_forward(x, c, ca)[0]
    out = x * x  # u, then tanh(u), then the output, all in one buffer
    out *= ca
    out += c
    out *= x
    np.tanh(out, out=out)
    out += 1
    out *= x
    out *= 0.5
    return out


class KVCache:
    """Keys and values (B,H,S,K) of the positions decoded so far, in buffers as long as the
    model's context, written in place: a new position costs its own keys, not a copy of all."""

    def __init__(self) -> None:
        self.k: np.ndarray | None = None  # (B,H,capacity,K)
        self.v: np.ndarray | None = None
        self.length = 0  # positions filled

    def append(self, k_new: np.ndarray, v_new: np.ndarray, capacity: int) -> None:
        """k_new, v_new (B,H,S_new,K) go after the cached positions."""
        b, h, s_new, width = k_new.shape
        end = self.length + s_new
        if self.k is None or end > self.k.shape[2]:
            grown_k = np.empty((b, h, max(capacity, end), width), k_new.dtype)
            grown_v = np.empty_like(grown_k)
            if self.k is not None:
                grown_k[:, :, :self.length] = self.k[:, :, :self.length]
                grown_v[:, :, :self.length] = self.v[:, :, :self.length]
            self.k, self.v = grown_k, grown_v
        self.k[:, :, self.length:end] = k_new
        self.v[:, :, self.length:end] = v_new
        self.length = end

    def keys(self) -> tuple[np.ndarray, np.ndarray]:
        """(k, v) of the filled positions, views (B,H,S,K)."""
        return self.k[:, :, :self.length], self.v[:, :, :self.length]


def attention_cached(q, k, v, keep, scale, axis, fill):
    """Decoding: q (B,H,T,K) against the cached k, v (B,H,S,K) -> context (B,H,T,K), on the
    calling thread (no pool hand-off), the formula's arithmetic in one buffer."""
    weights = q @ k.transpose(0, 1, 3, 2)  # (B,H,T,S)
    return _normalise_(weights, keep, scale, axis, fill) @ v
