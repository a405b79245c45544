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

`forward` and `backward` below are the formula, one step per paragraph, each followed by the
trace event that shows it. When nothing records, the same arithmetic runs as fast kernels
(engine/fast/kernels.py: one block of batch rows at a time on the thread pool, in one buffer),
chosen by the one rule in kernel_choice.py; `infer` (cached decoding) always runs them.
"""
from __future__ import annotations

import numpy as np

from ...fast import kernels
from ..config import ModelConfig
from ..param import Module
from .dropout import Dropout
from .kernel_choice import use_kernels, watcher
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


def merge_side_by_side(*heads: np.ndarray) -> np.ndarray:
    """n arrays (B,H,T,K) -> (B,T,n*H*K): each merged as by merge_heads, side by side, in one copy."""
    b, h, t, k = heads[0].shape
    merged = np.empty((b, t, len(heads), h, k), dtype=heads[0].dtype)  # (B,T,n,H,K)
    for i, x in enumerate(heads):
        merged[:, :, i] = x.transpose(0, 2, 1, 3)  # (B,T,H,K)
    return merged.reshape(b, t, -1)


def masked_fill(x: np.ndarray, keep: np.ndarray, fill) -> np.ndarray:
    """where(keep, x, fill) as a fresh array: x's values where keep is True, `fill` elsewhere
    (keep broadcasts against x). A copy and a masked overwrite: faster than np.where."""
    out = x.copy()
    np.copyto(out, x.dtype.type(fill), where=~keep)
    return out


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """exp(x - max) / sum(exp(x - max)) along `axis`.

    Over the last axis (the keys) the sum is one product with a ones vector and the division a
    multiply by its reciprocal: NumPy sums a short last axis row by row (~4x slower at 64 keys)
    and divides ~2x slower than it multiplies.
    """
    e = x - x.max(axis=axis, keepdims=True)  # shifted: the largest is 0, exp cannot overflow
    np.exp(e, out=e)
    if axis in (-1, x.ndim - 1):
        total = e @ kernels.ones_column(x.shape[-1], x.dtype)  # (..., 1) row sums
    else:
        total = e.sum(axis=axis, keepdims=True)
    e *= np.reciprocal(total)
    return e


def softmax_backward(weights: np.ndarray, d_weights: np.ndarray, axis: int) -> np.ndarray:
    """d_s = w * (d_w - sum(d_w * w)) along the softmax axis."""
    if axis in (-1, weights.ndim - 1):
        dot = np.einsum("...s,...s->...", d_weights, weights)[..., None]  # (..., 1)
    else:
        dot = np.sum(d_weights * weights, axis=axis, keepdims=True)
    return (d_weights - dot) * weights


class MultiHeadAttention(Module):
    """Self-attention (x_kv is x_q) or cross-attention (x_kv is the encoder's memory)."""

    def __init__(self, path: str, config: ModelConfig, rng: np.random.Generator,
                 dropout_rng: np.random.Generator):
        super().__init__(path)
        d, dtype, std = config.d_model, config.np_dtype, config.init_std
        self.n_heads = config.n_heads
        self.max_len = config.max_len  # the longest a decoding cache can grow
        self.scale = 1.0 / np.sqrt(config.d_head)
        self.apply_scale = not config.breaks.no_scaling
        self.softmax_axis = -2 if config.breaks.softmax_wrong_axis else -1
        # the kernels' settings: scale (None when the break switch skips it), axis, fill
        self._settings = dict(scale=self.scale if self.apply_scale else None,
                              axis=self.softmax_axis, fill=MASK_FILL)
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            setattr(self, name, self.add_child(name, Linear(self.child_path(name), d, d, rng, std, dtype)))
        self.attn_drop = self.add_child("attn_drop", Dropout(self.child_path("attn_drop"),
                                                             config.dropout, dropout_rng))
        self._saved: dict[str, object] = {}

    def forward(self, x_q: np.ndarray, x_kv: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
        """x_q (B,T,D), x_kv (B,S,D), keep broadcastable to (B,H,T,S) or None -> (B,T,D)."""
        if use_kernels():
            return self._forward_fast(x_q, x_kv, keep)
        rec, heads, axis = watcher(), self.n_heads, self.softmax_axis
        q, k, v = self._project(x_q, x_kv)  # (B,T,D) (B,S,D) (B,S,D)
        q_heads, k_heads, v_heads = (split_heads(t, heads) for t in (q, k, v))  # (B,H,T|S,K)
        rec.forward(self.child_path("split_heads"), "split_heads",
                    {"q": q, "k": k, "v": v, "q_heads": q_heads, "k_heads": k_heads,
                     "v_heads": v_heads}, heads=heads)

        scores = q_heads @ k_heads.transpose(0, 1, 3, 2)  # (B,H,T,S)
        rec.forward(self.child_path("scores"), "scores", {"q": q_heads, "k": k_heads,
                    "scores": scores})

        scale = self.scale if self.apply_scale else 1.0  # 1 / sqrt(K); 1 with the break switch
        scaled = scores * scores.dtype.type(scale) if self.apply_scale else scores  # (B,H,T,S)
        rec.forward(self.child_path("scale"), "scale", {"scores": scores, "scaled": scaled},
                    scale=scale, applied=self.apply_scale)

        masked = scaled
        if keep is not None:
            masked = masked_fill(scaled, keep, MASK_FILL)  # (B,H,T,S)
            rec.forward(self.child_path("mask"), "mask", {"scaled": scaled, "keep": keep,
                        "masked": masked}, fill=MASK_FILL)

        weights = softmax(masked, axis)  # (B,H,T,S)
        if keep is not None:  # a query that may see no key attends to nothing
            blind = ~keep.any(axis=-1)  # (B|1,H|1,T)
            weights[np.broadcast_to(blind, weights.shape[:-1])] = 0  # their rows
        rec.forward(self.child_path("softmax"), "softmax", {"masked": masked,
                    "weights": weights}, axis=axis)

        dropped = self.attn_drop.forward(weights)  # (B,H,T,S)
        context = dropped @ v_heads  # (B,H,T,K)
        rec.forward(self.child_path("attend"), "attend", {"weights": dropped, "v": v_heads,
                    "context": context})

        merged = merge_heads(context)  # (B,T,D)
        rec.forward(self.child_path("merge_heads"), "merge_heads",
                    {"context": context, "merged": merged}, heads=heads)

        self._save(q_heads, k_heads, v_heads, weights, dropped, keep, x_kv is x_q)
        return self.o_proj.forward(merged)  # (B,T,D)

    def backward(self, d_out: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """d_out (B,T,D) -> (d_x_q (B,T,D), d_x_kv (B,S,D)); for self-attention d_x_q is the
        whole input gradient (q, k and v's shares summed in one product) and d_x_kv is None."""
        if use_kernels():
            return self._backward_fast(d_out)
        rec, s, heads, axis = watcher(), self._saved, self.n_heads, self.softmax_axis
        q_heads, k_heads, v_heads = s["q_heads"], s["k_heads"], s["v_heads"]  # (B,H,T|S,K)
        weights, dropped, keep = s["weights"], s["dropped"], s["keep"]  # (B,H,T,S)
        d_merged = self.o_proj.backward(d_out)  # (B,T,D)
        d_context = split_heads(d_merged, heads)  # (B,H,T,K)
        rec.backward(self.child_path("merge_heads"), "merge_heads",
                     {"d_merged": d_merged, "d_context": d_context})

        d_dropped = d_context @ v_heads.transpose(0, 1, 3, 2)  # (B,H,T,S)
        d_v_heads = dropped.transpose(0, 1, 3, 2) @ d_context  # (B,H,S,K)
        rec.backward(self.child_path("attend"), "attend",
                     {"d_context": d_context, "d_weights": d_dropped, "d_v": d_v_heads})

        d_weights = self.attn_drop.backward(d_dropped)  # (B,H,T,S)
        d_masked = softmax_backward(weights, d_weights, axis)
        rec.backward(self.child_path("softmax"), "softmax",
                     {"d_weights": d_weights, "d_masked": d_masked}, axis=axis)

        d_scaled = d_masked
        if keep is not None:  # the fill is a constant: masked positions pass no gradient back
            d_scaled = masked_fill(d_masked, keep, 0)
            rec.backward(self.child_path("mask"), "mask", {"d_masked": d_masked,
                         "d_scaled": d_scaled})

        scale = self.scale if self.apply_scale else 1.0
        d_scores = d_scaled * d_scaled.dtype.type(scale) if self.apply_scale else d_scaled
        rec.backward(self.child_path("scale"), "scale", {"d_scaled": d_scaled,
                     "d_scores": d_scores}, scale=scale, applied=self.apply_scale)

        d_q_heads = d_scores @ k_heads  # (B,H,T,K)
        d_k_heads = d_scores.transpose(0, 1, 3, 2) @ q_heads  # (B,H,S,K)
        rec.backward(self.child_path("scores"), "scores", {"d_scores": d_scores,
                     "d_q": d_q_heads, "d_k": d_k_heads})

        # heads merged back (B,T|S,D), those of one input side by side for one product back
        if s["self"]:
            d_qkv = merge_side_by_side(d_q_heads, d_k_heads, d_v_heads)  # [d_q d_k d_v] (B,T,3D)
            (d_q, d_k, d_v), d_kv = np.split(d_qkv, 3, axis=-1), None
        else:
            d_qkv, d_kv = merge_heads(d_q_heads), merge_side_by_side(d_k_heads, d_v_heads)
            d_q, (d_k, d_v) = d_qkv, np.split(d_kv, 2, axis=-1)  # d_kv = [d_k d_v] (B,S,2D)
        rec.backward(self.child_path("split_heads"), "split_heads",
                     {"d_q_heads": d_q_heads, "d_k_heads": d_k_heads, "d_v_heads": d_v_heads,
                      "d_q": d_q, "d_k": d_k, "d_v": d_v})
        return self._project_backward(d_qkv, d_kv)

    # -- the projections, shared by the formula and the kernels --------------------------------
    def _project(self, x_q: np.ndarray, x_kv: np.ndarray) -> list[np.ndarray]:
        """q, k, v (B,T|S,D). Projections that read the same input run as one product
        x [Wq Wk Wv] + [bq bk bv] (GPT-2's c_attn), see `forward_together`."""
        if x_kv is x_q:  # self-attention
            return forward_together([self.q_proj, self.k_proj, self.v_proj], x_q)
        return [self.q_proj.forward(x_q), *forward_together([self.k_proj, self.v_proj], x_kv)]

    def _project_backward(self, d_q: np.ndarray, d_kv: np.ndarray | None):
        """Self-attention: d_q is [d_q d_k d_v] (B,T,3D), d_kv None -> (d_x, None): the input's
        whole gradient in one product. Cross: d_q (B,T,D), d_kv = [d_k d_v] (B,S,2D) ->
        (d_x_q, d_memory)."""
        self._saved = {}
        if d_kv is None:
            return backward_together([self.q_proj, self.k_proj, self.v_proj], d_q), None
        return self.q_proj.backward(d_q), backward_together([self.k_proj, self.v_proj], d_kv)

    def _save(self, q_heads, k_heads, v_heads, weights, dropped, keep, is_self) -> None:
        """What backward needs: the heads (B,H,T|S,K), the weights before and after dropout
        (B,H,T,S; the same array without dropout), the mask, and whether x_q fed k and v."""
        self._saved = {"q_heads": q_heads, "k_heads": k_heads, "v_heads": v_heads,
                       "weights": weights, "dropped": dropped, "keep": keep, "self": is_self}

    # -- the same arithmetic as fast kernels (engine/fast/kernels.py) ---------------------------
    def _forward_fast(self, x_q, x_kv, keep):
        """`forward` as kernels: the chain scores .. attend per block of batch rows."""
        q, k, v = self._project(x_q, x_kv)  # (B,T,D) (B,S,D) (B,S,D)
        q_heads, k_heads, v_heads = (split_heads(t, self.n_heads) for t in (q, k, v))
        merged = np.empty(q.shape, dtype=q.dtype)  # (B,T,D); context lands in it merged
        drop = self.attn_drop.forward if self.attn_drop.active else None
        weights, dropped = kernels.attention_forward(
            q_heads, k_heads, v_heads, keep, context=split_heads(merged, self.n_heads),
            drop=drop, **self._settings)
        if drop is None:
            self.attn_drop.forward(weights)  # the identity; keeps its state in step
        self._save(q_heads, k_heads, v_heads, weights, dropped, keep, x_kv is x_q)
        return self.o_proj.forward(merged)

    def _backward_fast(self, d_out):
        """`backward` as kernels, writing the heads' gradients straight into one buffer."""
        s = self._saved
        d_merged = self.o_proj.backward(d_out)  # (B,T,D)
        (b, t, d), n_keys = d_merged.shape, s["v_heads"].shape[2]
        # Each head's gradient is written through the (B,H,T|S,K) view of a column block of one
        # buffer, so it arrives merged and side by side for the projections' backward.
        if s["self"]:
            d_qkv, d_kv = np.empty((b, t, 3 * d), d_merged.dtype), None  # [d_q d_k d_v]
            d_q, d_k, d_v = d_qkv[..., :d], d_qkv[..., d:2 * d], d_qkv[..., 2 * d:]
        else:
            d_qkv, d_kv = np.empty_like(d_merged), np.empty((b, n_keys, 2 * d), d_merged.dtype)
            d_q, d_k, d_v = d_qkv, d_kv[..., :d], d_kv[..., d:]  # d_kv = [d_k d_v]
        drop_backward = None if s["dropped"] is s["weights"] else self.attn_drop.backward
        heads = self.n_heads
        kernels.attention_backward(
            s["q_heads"], s["k_heads"], s["v_heads"], s["weights"], s["dropped"], s["keep"],
            d_context=split_heads(d_merged, heads), d_q=split_heads(d_q, heads),
            d_k=split_heads(d_k, heads), d_v=split_heads(d_v, heads),
            drop_backward=drop_backward, **self._settings)
        if drop_backward is None:
            self.attn_drop.backward(d_merged)  # the identity; clears its state
        return self._project_backward(d_qkv, d_kv)

    def infer(self, x_q: np.ndarray, x_kv: np.ndarray | None, keep: np.ndarray | None,
              cache: dict[str, object]) -> np.ndarray:
        """The forward's arithmetic for cached decoding: nothing saved, nothing recorded.

        Keys and values of `x_kv` are appended to `cache["kv"]` (a kernels.KVCache: (B,H,S,K)
        buffers for max_len positions, written in place), so the prefix is projected once.
        `x_kv=None` reuses the cache as it is (cross-attention after the first step: the
        encoder's memory does not change). A cache belongs to one decoding: self-attention
        keeps its q, k, v weights side by side in it, for one product per step.
        """
        heads = self.n_heads
        if x_kv is x_q:  # self-attention: q, k, v = x [Wq Wk Wv] + [bq bk bv], as in forward
            if "w_qkv" not in cache:
                projections = (self.q_proj, self.k_proj, self.v_proj)
                cache["w_qkv"] = np.concatenate([p.w.data for p in projections], axis=1)
                cache["b_qkv"] = np.concatenate([p.b.data for p in projections])
            qkv = kernels.affine_rows(x_q.reshape(-1, x_q.shape[-1]), cache["w_qkv"],
                                      cache["b_qkv"])  # (B*T, 3D)
            qkv, d = qkv.reshape(*x_q.shape[:-1], -1), x_q.shape[-1]  # (B,T,3D)
            q, k_new, v_new = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
        else:
            q = self.q_proj.infer(x_q)  # (B,T,D)
            k_new = None if x_kv is None else self.k_proj.infer(x_kv)  # (B,S,D)
            v_new = None if x_kv is None else self.v_proj.infer(x_kv)
        if k_new is not None:
            if "kv" not in cache:
                cache["kv"] = kernels.KVCache()
            cache["kv"].append(split_heads(k_new, heads), split_heads(v_new, heads), self.max_len)
        k_heads, v_heads = cache["kv"].keys()  # (B,H,S,K)
        context = kernels.attention_cached(split_heads(q, heads), k_heads, v_heads, keep,
                                           **self._settings)  # (B,H,T,K)
        return self.o_proj.infer(merge_heads(context))  # (B,T,D)
