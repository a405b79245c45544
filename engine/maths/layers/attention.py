"""Multi-head scaled dot-product attention, every step explicit and with its own backward.

Shapes: B batch, T query length, S key length (S = T in self-attention), D model width,
H heads, K head width (D / H).

    q, k, v   = x_q Wq + bq, x_kv Wk + bk, x_kv Wv + bv           (B,T,D) (B,S,D) (B,S,D)
    split     : (B,T,D) -> (B,T,H,K) -> (B,H,T,K)                   heads side by side, no loop
    scores    = q k^T                                                (B,H,T,S)
    scaled    = scores / sqrt(K)
    masked    = where(keep, scaled, -1e9)                            a large finite fill, never -inf
    weights   = softmax(masked) over keys                            rows sum to 1
    weights   = 0 in the rows of queries that may see no key         they attend to nothing
    weights   = dropout(weights)
    context   = weights v                                            (B,H,T,K)
    merge     : (B,H,T,K) -> (B,T,H,K) -> (B,T,D)
    out       = context Wo + bo                                      (B,T,D)

A fully masked row (a padding query at the start of a left-padded, causal row) would get
equal scores everywhere and a uniform softmax over every key, the future included; instead it
attends to nothing: its weights are zero, so its context is zero and its gradient too (the
softmax backward multiplies by the weights). Every other row is untouched: its masked keys
already get exactly zero weight from the softmax.
`keep` is a boolean array broadcastable to (B, H, T, S): True where a query may see a key.
When nothing records, intermediate steps run in place on one (B,H,T,S) buffer; when
recording, they run out of place on the same numbers, so the values are bit-identical.
"""
from __future__ import annotations

import numpy as np

from ...fast import parallel
from ..config import ModelConfig
from ..param import Module
from ..recorder import active
from .dropout import Dropout
from .linear import Linear, backward_together, forward_together

MASK_FILL = -1e9


def split_heads(x: np.ndarray, n_heads: int) -> np.ndarray:
    """(B, T, D) -> (B, H, T, K): a view; head h holds columns h*K:(h+1)*K."""
    b, t, d = x.shape
    return x.reshape(b, t, n_heads, d // n_heads).transpose(0, 2, 1, 3)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """(B, H, T, K) -> (B, T, H*K): the inverse of split_heads (copies to contiguous)."""
    b, h, t, k = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, t, h * k)


def softmax(x: np.ndarray, axis: int, out: np.ndarray | None = None) -> np.ndarray:
    """Numerically stable softmax; writes into `out` when given (may be `x` itself).

    Over the last axis (attention's keys), each row's sum is one product with a ones vector
    and the division a multiply by its reciprocal: NumPy reduces a short last axis row by row
    (~4x slower at 64 keys) and divides ~2x slower than it multiplies.
    """
    shifted = np.subtract(x, x.max(axis=axis, keepdims=True), out=out)
    np.exp(shifted, out=shifted)
    if axis in (-1, x.ndim - 1):
        total = shifted @ np.ones((x.shape[-1], 1), dtype=x.dtype)  # (..., 1) row sums
    else:
        total = shifted.sum(axis=axis, keepdims=True)
    shifted *= np.reciprocal(total, out=total)
    return shifted


def blind_rows(keep: np.ndarray | None) -> np.ndarray | None:
    """keep (B|1,H|1,T|1,S) -> (..., 1) True for queries that may see no key, or None if none."""
    if keep is None:
        return None
    blind = ~keep.any(axis=-1, keepdims=True)
    return blind if blind.any() else None


def attend_to_nothing(weights: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """Zero, in place, the weight rows (B,H,T,S) of queries that may see no key; returns them."""
    blind = blind_rows(keep)
    if blind is not None:
        np.copyto(weights, weights.dtype.type(0), where=blind)
    return weights


def softmax_backward(weights: np.ndarray, d_weights: np.ndarray, axis: int) -> np.ndarray:
    """d_s = w * (d_w - sum(d_w * w)) along the softmax axis; reuses the d_weights buffer."""
    if axis in (-1, weights.ndim - 1):  # one pass, no (..., S) temporary
        dot = np.einsum("...s,...s->...", d_weights, weights)[..., None]
    else:
        dot = np.sum(d_weights * weights, axis=axis, keepdims=True)
    d_s = d_weights
    d_s -= dot
    d_s *= weights
    return d_s


def _rows_of(mask: np.ndarray | None, rows: slice) -> np.ndarray | None:
    """The batch rows of a mask that is (B, ...) or broadcast over the batch (1, ...)."""
    return mask if mask is None or mask.shape[0] == 1 else mask[rows]


def _maybe_copy(a: np.ndarray, copy: bool) -> np.ndarray:
    return a.copy() if copy else a


class MultiHeadAttention(Module):
    """Self-attention (x_kv is x_q) or cross-attention (x_kv is the encoder's memory)."""

    def __init__(self, path: str, config: ModelConfig, rng: np.random.Generator,
                 dropout_rng: np.random.Generator):
        super().__init__(path)
        d, dtype, std = config.d_model, config.np_dtype, config.init_std
        self.n_heads = config.n_heads
        self.scale = 1.0 / np.sqrt(config.d_head)
        self.apply_scale = not config.breaks.no_scaling
        self.softmax_axis = -2 if config.breaks.softmax_wrong_axis else -1
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            setattr(self, name, self.add_child(name, Linear(self.child_path(name), d, d, rng, std, dtype)))
        self.attn_drop = self.add_child("attn_drop", Dropout(self.child_path("attn_drop"),
                                                             config.dropout, dropout_rng))
        self._saved: dict[str, np.ndarray] = {}

    def forward(self, x_q: np.ndarray, x_kv: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
        """x_q (B,T,D), x_kv (B,S,D), keep broadcastable to (B,H,T,S) or None -> (B,T,D)."""
        rec = active()
        # Projections that read the same input run as one product (see forward_together).
        if x_kv is x_q:  # self-attention
            q, k, v = forward_together([self.q_proj, self.k_proj, self.v_proj], x_q)  # (B,T,D)
        else:  # cross-attention: queries from x_q, keys and values from the memory
            q = self.q_proj.forward(x_q)  # (B,T,D)
            k, v = forward_together([self.k_proj, self.v_proj], x_kv)  # (B,S,D)
        qh, kh, vh = (split_heads(t, self.n_heads) for t in (q, k, v))  # (B,H,T|S,K)
        if rec:
            rec.forward(self.child_path("split_heads"), "split_heads",
                        {"q": q, "k": k, "v": v, "q_heads": qh, "k_heads": kh, "v_heads": vh},
                        heads=self.n_heads)
        merged = np.empty(q.shape, dtype=q.dtype)  # (B,T,D)
        # Products written through this (B,H,T,K) view of `merged` land merged: no copy.
        context = split_heads(merged, self.n_heads)
        if rec is None and not self.attn_drop.active:
            weights = self._attend_in_blocks(qh, kh, vh, keep, context)  # (B,H,T,S)
            dropped = self.attn_drop.forward(weights)  # the identity here
        else:  # step by step, so the recorder sees every step (and dropout draws its mask)
            scores = parallel.matmul(qh, kh.transpose(0, 1, 3, 2))  # (B,H,T,S)
            if rec:
                rec.forward(self.child_path("scores"), "scores",
                            {"q": qh, "k": kh, "scores": scores})
                weights = self._normalise(scores, keep, rec)[2]
            else:
                parallel.for_each_block(len(scores), 7 * scores.size, lambda rows: self._normalise(
                    scores[rows], _rows_of(keep, rows), None))
                weights = scores
            dropped = self.attn_drop.forward(weights)  # (B,H,T,S)
            parallel.matmul(dropped, vh, out=context)  # (B,H,T,K)
        if rec:
            rec.forward(self.child_path("attend"), "attend", {"weights": dropped, "v": vh,
                        "context": context})
            rec.forward(self.child_path("merge_heads"), "merge_heads",
                        {"context": context, "merged": merged}, heads=self.n_heads)
        self._saved = {"qh": qh, "kh": kh, "vh": vh, "weights": weights, "dropped": dropped,
                       "keep": keep, "self": x_kv is x_q}
        return self.o_proj.forward(merged)

    def _attend_in_blocks(self, qh: np.ndarray, kh: np.ndarray, vh: np.ndarray,
                          keep: np.ndarray | None, context: np.ndarray) -> np.ndarray:
        """scores, scale, mask, softmax and context for one batch block after another, each
        block start to finish on one thread: one hand-off instead of three, and the block's
        scores stay in cache. The step-by-step path's arithmetic, so the same bits.

        qh (B,H,T,K), kh and vh (B,H,S,K); writes context (B,H,T,K); returns weights (B,H,T,S).
        """
        weights = np.empty(qh.shape[:3] + kh.shape[2:3], dtype=qh.dtype)  # (B,H,T,S)

        def block(rows: slice) -> None:
            np.matmul(qh[rows], kh[rows].transpose(0, 1, 3, 2), out=weights[rows])
            self._normalise(weights[rows], _rows_of(keep, rows), None)
            np.matmul(weights[rows], vh[rows], out=context[rows])

        products = 2 * weights.size * qh.shape[-1] // parallel.MACS_PER_PASS
        parallel.for_each_block(len(weights), products + 7 * weights.size, block)
        return weights

    def _attend_backward_in_blocks(self, d_context: np.ndarray, d_qh: np.ndarray,
                                   d_kh: np.ndarray, d_vh: np.ndarray) -> np.ndarray:
        """The backward of `_attend_in_blocks`, block by block: d_weights and d_v, then
        softmax, mask and scale backward in place, then d_q and d_k. Writes d_qh, d_kh, d_vh
        (B,H,T|S,K); returns d_scores (B,H,T,S)."""
        s = self._saved
        qh, kh, vh, weights, keep = s["qh"], s["kh"], s["vh"], s["weights"], s["keep"]
        d_scores = np.empty_like(weights)  # (B,H,T,S): d_weights first, then d_scores

        def block(rows: slice) -> None:
            np.matmul(d_context[rows], vh[rows].transpose(0, 1, 3, 2), out=d_scores[rows])
            np.matmul(weights[rows].transpose(0, 1, 3, 2), d_context[rows], out=d_vh[rows])
            self._normalise_backward(weights[rows], d_scores[rows], _rows_of(keep, rows), None)
            np.matmul(d_scores[rows], kh[rows], out=d_qh[rows])
            np.matmul(d_scores[rows].transpose(0, 1, 3, 2), qh[rows], out=d_kh[rows])

        products = 4 * weights.size * qh.shape[-1] // parallel.MACS_PER_PASS
        parallel.for_each_block(len(weights), products + 5 * weights.size, block)
        return d_scores

    def _normalise(self, scores: np.ndarray, keep: np.ndarray | None, rec):
        """scaled = scores / sqrt(K); masked = fill where not keep; weights = softmax(masked).

        Returns (scaled, masked, weights). With a recorder each step gets a fresh array and an
        event; without one, all three are `scores` itself, overwritten in place.
        """
        in_place = None if rec else scores
        scaled = scores
        if self.apply_scale:
            scaled = np.multiply(scores, scores.dtype.type(self.scale), out=in_place)  # (B,H,T,S)
        if rec:
            rec.forward(self.child_path("scale"), "scale", {"scores": scores, "scaled": scaled},
                        scale=self.scale if self.apply_scale else 1.0, applied=self.apply_scale)
        masked = scaled
        if keep is not None:
            if rec:
                masked = np.where(keep, scaled, scaled.dtype.type(MASK_FILL))
                rec.forward(self.child_path("mask"), "mask", {"scaled": scaled, "keep": keep,
                            "masked": masked}, fill=MASK_FILL)
            else:
                np.copyto(masked, scaled.dtype.type(MASK_FILL), where=~keep)
        weights = attend_to_nothing(softmax(masked, self.softmax_axis, out=in_place), keep)
        if rec:
            rec.forward(self.child_path("softmax"), "softmax", {"masked": masked, "weights": weights},
                        axis=self.softmax_axis)
        return scaled, masked, weights

    def _normalise_backward(self, weights: np.ndarray, d_weights: np.ndarray,
                            keep: np.ndarray | None, rec) -> np.ndarray:
        """d_weights -> d_scores through softmax, mask and scale (the forward's steps reversed).

        Without a recorder each step overwrites `d_weights`; with one, each step gets a fresh
        buffer (same arithmetic, so the same bits) and an event, so the trace keeps every step.
        """
        copy = rec is not None
        d_masked = softmax_backward(weights, _maybe_copy(d_weights, copy), self.softmax_axis)
        if rec:
            rec.backward(self.child_path("softmax"), "softmax",
                         {"d_weights": d_weights, "d_masked": d_masked}, axis=self.softmax_axis)
        d_scaled = d_masked
        if keep is not None:
            # The fill is a constant: masked positions pass no gradient back.
            d_scaled = _maybe_copy(d_masked, copy)
            np.copyto(d_scaled, d_scaled.dtype.type(0), where=~keep)
            if rec:
                rec.backward(self.child_path("mask"), "mask", {"d_masked": d_masked,
                             "d_scaled": d_scaled})
        d_scores = d_scaled
        if self.apply_scale:
            d_scores = _maybe_copy(d_scaled, copy)
            d_scores *= d_scores.dtype.type(self.scale)
        if rec:
            rec.backward(self.child_path("scale"), "scale", {"d_scaled": d_scaled,
                         "d_scores": d_scores}, scale=self.scale if self.apply_scale else 1.0,
                         applied=self.apply_scale)
        return d_scores

    def infer(self, x_q: np.ndarray, x_kv: np.ndarray | None, keep: np.ndarray | None,
              cache: dict[str, np.ndarray]) -> np.ndarray:
        """The forward's arithmetic for cached decoding: nothing saved for backward, nothing recorded.

        Keys and values of `x_kv` are appended to `cache["k"]`, `cache["v"]` (B,H,S,K), so the
        prefix is projected once. `x_kv=None` reuses the cache as it is (cross-attention after
        the first step: the encoder's memory does not change).
        """
        qh = split_heads(self.q_proj.infer(x_q), self.n_heads)  # (B,H,T,K)
        if x_kv is not None:
            kh = split_heads(self.k_proj.infer(x_kv), self.n_heads)  # (B,H,S_new,K)
            vh = split_heads(self.v_proj.infer(x_kv), self.n_heads)
            if "k" in cache:
                kh = np.concatenate([cache["k"], kh], axis=2)
                vh = np.concatenate([cache["v"], vh], axis=2)
            cache["k"], cache["v"] = kh, vh
        kh, vh = cache["k"], cache["v"]
        scores = qh @ kh.transpose(0, 1, 3, 2)  # (B,H,T,S)
        if self.apply_scale:
            scores *= scores.dtype.type(self.scale)
        if keep is not None:
            np.copyto(scores, scores.dtype.type(MASK_FILL), where=~keep)
        weights = attend_to_nothing(softmax(scores, self.softmax_axis, out=scores), keep)
        return self.o_proj.infer(merge_heads(weights @ vh))  # (B,T,D)

    def backward(self, d_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """d_out (B,T,D) -> (d_x_q (B,T,D), d_x_kv (B,S,D)); for self-attention d_x_q is the
        whole input gradient (q, k and v's shares summed in one product) and d_x_kv is None."""
        rec = active()
        s = self._saved
        d_merged = self.o_proj.backward(d_out)  # (B,T,D)
        d_context = split_heads(d_merged, self.n_heads)  # (B,H,T,K) view
        if rec:
            rec.backward(self.child_path("merge_heads"), "merge_heads",
                         {"d_merged": d_merged, "d_context": d_context})
        # Each product is written through the (B,H,T|S,K) view of a (B,T|S,D) column block of
        # one buffer, so the heads arrive merged and side by side for the projections' backward.
        b, t, d = d_merged.shape
        if s["self"]:
            d_qkv = np.empty((b, t, 3 * d), d_merged.dtype)  # [d_q d_k d_v]
            d_q, d_k, d_v = d_qkv[..., :d], d_qkv[..., d:2 * d], d_qkv[..., 2 * d:]
        else:
            d_q = np.empty_like(d_merged)
            d_kv = np.empty((b, s["vh"].shape[2], 2 * d), d_merged.dtype)  # [d_k d_v]
            d_k, d_v = d_kv[..., :d], d_kv[..., d:]
        d_qh, d_kh, d_vh = (split_heads(g, self.n_heads) for g in (d_q, d_k, d_v))
        if rec is None and s["dropped"] is s["weights"]:  # no recorder, no dropout mask
            d_scores = self._attend_backward_in_blocks(d_context, d_qh, d_kh, d_vh)
            self.attn_drop.backward(d_scores)  # the identity; clears its state
        else:  # step by step, so the recorder sees every step
            d_dropped = parallel.matmul(d_context, s["vh"].transpose(0, 1, 3, 2))  # (B,H,T,S)
            parallel.matmul(s["dropped"].transpose(0, 1, 3, 2), d_context, out=d_vh)
            if rec:
                rec.backward(self.child_path("attend"), "attend",
                             {"d_context": d_context, "d_weights": d_dropped, "d_v": d_vh})
            d_weights = self.attn_drop.backward(d_dropped)
            if rec:
                d_scores = self._normalise_backward(s["weights"], d_weights, s["keep"], rec)
            else:
                parallel.for_each_block(len(d_weights), 5 * d_weights.size,
                                        lambda rows: self._normalise_backward(
                                            s["weights"][rows], d_weights[rows],
                                            _rows_of(s["keep"], rows), None))
                d_scores = d_weights
            parallel.matmul(d_scores, s["kh"], out=d_qh)  # (B,H,T,K)
            parallel.matmul(d_scores.transpose(0, 1, 3, 2), s["qh"], out=d_kh)  # (B,H,S,K)
        if rec:
            rec.backward(self.child_path("scores"), "scores", {"d_scores": d_scores,
                         "d_q": d_qh, "d_k": d_kh})
            rec.backward(self.child_path("split_heads"), "split_heads",
                         {"d_q_heads": d_qh, "d_k_heads": d_kh, "d_v_heads": d_vh,
                          "d_q": d_q, "d_k": d_k, "d_v": d_v})
        self._saved = {}
        if s["self"]:  # one input fed q, k and v: its gradient is the one product's d_x
            return backward_together([self.q_proj, self.k_proj, self.v_proj], d_qkv), None
        return self.q_proj.backward(d_q), backward_together([self.k_proj, self.v_proj], d_kv)
