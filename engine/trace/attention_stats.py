"""Numbers about attention rows that the explorer's views show and the lessons ask about:
softmax entropy and the largest weight per query row with and without the 1/sqrt(d_k) scale,
the spread of scores as the head width grows, the row a temperature view should start on, and
how alike the positional vectors are. Plain NumPy on arrays a trace recorded.

    rows = scaling_rows(scores, keep, scale)      # per query row, scaled vs raw
    table = spread_by_width(sigma_q, sigma_k, n_keys)   # d_k = 4 .. 64
    q = informative_row(weights, keep)           # neither uniform nor saturated

Shapes: T queries, S keys, L positions, D model width. Entropies in nats.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WIDTHS = (4, 8, 16, 32, 64)  # head widths d_k the spread table shows
SPREAD_SAMPLES = 512  # random query rows per width: std and entropy settle to ~2-3 digits
SPREAD_SEED = 0  # one fixed draw, so the view and a lesson's answer agree to the last digit


def softmax_rows(logits: np.ndarray, keep: np.ndarray | None = None,
                 temperature: float = 1.0) -> np.ndarray:
    """(T, S) softmax of each row of `logits / temperature` over its kept keys (float64);
    masked keys get exactly 0, a row with no key kept is all 0."""
    z = np.atleast_2d(np.asarray(logits, dtype=np.float64)) / temperature
    keep = np.ones(z.shape, bool) if keep is None else np.broadcast_to(keep, z.shape)
    z = np.where(keep, z, -np.inf)
    top = np.max(z, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.where(keep, np.exp(z - top), 0.0)
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def entropy_rows(p: np.ndarray) -> np.ndarray:
    """(T,) -sum p ln p of each row (0 ln 0 = 0)."""
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    logs = np.log(np.where(p > 0, p, 1.0))
    return -(p * logs).sum(axis=-1)


@dataclass(frozen=True)
class ScalingRows:
    """One head's rows with the scale (as the model ran) and without it (raw scores)."""

    scale: float  # the factor applied: 1/sqrt(d_k), or 1 with scaling off
    visible: np.ndarray  # (T,) keys each row may see
    entropy_scaled: np.ndarray  # (T,)
    entropy_raw: np.ndarray  # (T,)
    top_scaled: np.ndarray  # (T,) largest weight
    top_raw: np.ndarray  # (T,)
    std_scaled: float  # spread of the row's visible scores, over the whole map
    std_raw: float


def scaling_rows(scores: np.ndarray, keep: np.ndarray | None, scale: float) -> ScalingRows:
    """`scores` (T, S) = q . k before any scaling; `keep` (T, S) or None."""
    raw = np.asarray(scores, dtype=np.float64)
    keep = np.ones(raw.shape, bool) if keep is None else np.broadcast_to(keep, raw.shape)
    p_raw, p_scaled = softmax_rows(raw, keep), softmax_rows(raw * scale, keep)
    visible = raw[keep]
    return ScalingRows(float(scale), keep.sum(axis=-1), entropy_rows(p_scaled),
                       entropy_rows(p_raw), p_scaled.max(axis=-1), p_raw.max(axis=-1),
                       float(np.std(visible * scale)) if visible.size else 0.0,
                       float(np.std(visible)) if visible.size else 0.0)


@dataclass(frozen=True)
class WidthSpread:
    """Random scores q . k at one head width, q and k entries drawn with given spreads."""

    width: int  # d_k
    std_raw: float  # spread of q . k
    std_scaled: float  # spread of q . k / sqrt(d_k)
    entropy_raw: float  # mean softmax entropy of a row of n_keys raw scores
    entropy_scaled: float
    top_raw: float  # mean largest weight of such a row
    top_scaled: float


def spread_by_width(sigma_q: float, sigma_k: float, n_keys: int,
                    widths: tuple[int, ...] = WIDTHS) -> list[WidthSpread]:
    """For each d_k: SPREAD_SAMPLES rows of `n_keys` scores q . k, q and k of width d_k with
    independent normal entries of std sigma_q and sigma_k (a head's own statistics). Theory:
    std(q . k) = sqrt(d_k) sigma_q sigma_k, so without the scale the rows sharpen as d_k grows;
    with it the spread stays sigma_q sigma_k."""
    n_keys = max(1, int(n_keys))
    found = []
    for d in widths:
        rng = np.random.default_rng((SPREAD_SEED, d))  # a width's draw: whatever the others
        q = rng.standard_normal((SPREAD_SAMPLES, 1, d)) * sigma_q
        k = rng.standard_normal((SPREAD_SAMPLES, n_keys, d)) * sigma_k
        raw = (q * k).sum(axis=-1)  # (SPREAD_SAMPLES, n_keys)
        scaled = raw / np.sqrt(d)
        p_raw, p_scaled = softmax_rows(raw), softmax_rows(scaled)
        found.append(WidthSpread(d, float(raw.std()), float(scaled.std()),
                                 float(entropy_rows(p_raw).mean()),
                                 float(entropy_rows(p_scaled).mean()),
                                 float(p_raw.max(axis=-1).mean()),
                                 float(p_scaled.max(axis=-1).mean())))
    return found


def informative_row(weights: np.ndarray, keep: np.ndarray | None = None) -> int:
    """The row (from 0) whose weights are furthest from both uniform and one-hot: entropy
    closest to half of ln(keys it sees). Rows seeing one key (nothing to choose) only when
    every row does."""
    p = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    keep = np.ones(p.shape, bool) if keep is None else np.broadcast_to(keep, p.shape)
    n = keep.sum(axis=-1)
    most = np.log(np.maximum(n, 2))
    distance = np.abs(entropy_rows(np.where(keep, p, 0.0)) / most - 0.5)
    distance = np.where(n >= 2, distance, np.inf)
    return int(np.argmin(distance)) if np.isfinite(distance).any() else 0


def cosine_matrix(table: np.ndarray) -> np.ndarray:
    """(L, L) cosine similarity of the rows of `table` (L, D); a zero row is 0 to everything."""
    a = np.asarray(table, dtype=np.float64)
    norms = np.linalg.norm(a, axis=-1, keepdims=True)
    unit = np.divide(a, norms, out=np.zeros_like(a), where=norms > 0)
    return unit @ unit.T


@dataclass(frozen=True)
class HeadScaling:
    """What scaling does to one head of one recorded attention layer."""

    path: str
    head: int  # from 0
    item: int  # from 0
    width: int  # d_k, the head width
    sigma_q: float  # std of the head's query entries
    sigma_k: float  # std of its key entries
    rows: ScalingRows  # per query row, with 1/sqrt(d_k) and without
    query_tokens: list[str]
    n_keys: int  # S

    def spread(self) -> list[WidthSpread]:
        """spread_by_width with this head's statistics, its own width among the widths."""
        widths = tuple(sorted(set(WIDTHS) | {self.width}))
        return spread_by_width(self.sigma_q, self.sigma_k, self.n_keys, widths)


def head_scaling(trace, path: str, head: int, item: int) -> HeadScaling:
    """HeadScaling of `trace`'s attention layer `path` (its recorded q, k and scores)."""
    amap = trace.attention(path, head, item, "scores")
    event = trace.events[amap.event_index]  # the scores op: q, k (B, H, T|S, K)
    q = np.asarray(event.tensors["q"][item, head], dtype=np.float64)
    k = np.asarray(event.tensors["k"][item, head], dtype=np.float64)
    width = q.shape[-1]
    rows = scaling_rows(amap.values, amap.keep, 1.0 / np.sqrt(width))
    return HeadScaling(path, head, item, width, float(q.std()), float(k.std()), rows,
                       list(amap.rows), amap.values.shape[1])
