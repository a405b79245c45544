"""Encoder and decoder blocks, post-LN (the paper) or pre-LN (GPT-2) by config.

Shapes: B batch, T target length, S source length, D model width.

Every block is a chain of residual sublayers. One `Sublayer` wraps an inner layer (self-
attention, cross-attention or feed-forward) with its LayerNorm, dropout and residual add:

    post-LN:  out = LN(x + dropout(f(x)))        the original Transformer
    pre-LN:   out = x + dropout(f(LN(x)))        GPT-2; the stack then ends with a final LN
"""
from __future__ import annotations

import numpy as np

from .config import ModelConfig
from .layers import Dropout, FeedForward, LayerNorm, MultiHeadAttention, ResidualAdd
from .param import Module
from ..fast import kernels
from .layers.kernel_choice import use_kernels

SELF_ATTENTION, CROSS_ATTENTION, FEED_FORWARD = "self_attn", "cross_attn", "ffn"


class Sublayer(Module):
    """One residual sublayer; `index` numbers its LayerNorm, dropout and residual (ln1, ...)."""

    def __init__(self, block: Module, index: int, kind: str, inner: Module, config: ModelConfig,
                 dropout_rng: np.random.Generator):
        super().__init__(block.path)  # no path level of its own: names stay "blocks.0.ln1"
        self.kind = kind
        self.pre_norm = config.norm == "pre"
        self.inner = self.add_child(kind, inner)
        self.norm = self.add_child(f"ln{index}", LayerNorm(block.child_path(f"ln{index}"),
                                                           config.d_model, config.ln_eps,
                                                           config.np_dtype))
        self.drop = self.add_child(f"drop{index}", Dropout(block.child_path(f"drop{index}"),
                                                           config.dropout, dropout_rng))
        self.residual = self.add_child(f"residual{index}", ResidualAdd(
            block.child_path(f"residual{index}"), disabled=config.breaks.no_residual))

    def forward(self, x: np.ndarray, memory: np.ndarray | None = None,
                keep: np.ndarray | None = None) -> np.ndarray:
        """x (B,T,D); memory (B,S,D) for cross-attention; keep: the attention mask."""
        h = self.norm.forward(x) if self.pre_norm else x
        if self.kind == SELF_ATTENTION:
            fx = self.inner.forward(h, h, keep)
        elif self.kind == CROSS_ATTENTION:
            fx = self.inner.forward(h, memory, keep)
        else:
            fx = self.inner.forward(h)
        out = self.residual.forward(x, self.drop.forward(fx))
        return out if self.pre_norm else self.norm.forward(out)

    def infer(self, x: np.ndarray, memory: np.ndarray | None, keep: np.ndarray | None,
              cache: dict[str, np.ndarray]) -> np.ndarray:
        """Cached decoding (eval mode: no dropout); `cache` holds this sublayer's keys/values."""
        h = self.norm.infer(x) if self.pre_norm else x
        if self.kind == SELF_ATTENTION:
            fx = self.inner.infer(h, h, keep, cache)
        elif self.kind == CROSS_ATTENTION:
            fx = self.inner.infer(h, None if "kv" in cache else memory, keep, cache)
        else:
            fx = self.inner.infer(h)
        out = fx if self.residual.disabled else x + fx
        return out if self.pre_norm else self.norm.infer(out)

    def backward(self, d_out: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """d_out (B,T,D) -> (d_x (B,T,D), d_memory (B,S,D) for cross-attention else None)."""
        if not self.pre_norm:
            d_out = self.norm.backward(d_out)
        d_skip, d_fx = self.residual.backward(d_out)
        d_fx = self.drop.backward(d_fx)
        d_memory = None
        if self.kind == SELF_ATTENTION:
            d_h, _ = self.inner.backward(d_fx)  # x fed queries, keys and values: all three
        elif self.kind == CROSS_ATTENTION:
            d_h, d_memory = self.inner.backward(d_fx)
        else:
            d_h = self.inner.backward(d_fx)
        if self.pre_norm:
            d_h = self.norm.backward(d_h)
        if d_skip is None:  # the skip connection is cut
            return d_h, d_memory
        # the gradients of the two paths meet: through f, and along the skip connection
        return (kernels.add(d_h, d_skip) if use_kernels() else d_h + d_skip), d_memory


class EncoderBlock(Module):
    """Self-attention over the source, then feed-forward."""

    def __init__(self, path: str, config: ModelConfig, rng: np.random.Generator,
                 dropout_rng: np.random.Generator):
        super().__init__(path)
        attn = MultiHeadAttention(self.child_path(SELF_ATTENTION), config, rng, dropout_rng)
        ffn = FeedForward(self.child_path(FEED_FORWARD), config.d_model, config.d_ff,
                          config.activation, rng, config.init_std, config.np_dtype)
        self.sublayers = [
            self.add_child("sub1", Sublayer(self, 1, SELF_ATTENTION, attn, config, dropout_rng)),
            self.add_child("sub2", Sublayer(self, 2, FEED_FORWARD, ffn, config, dropout_rng)),
        ]

    def forward(self, x: np.ndarray, src_keep: np.ndarray | None) -> np.ndarray:
        x = self.sublayers[0].forward(x, keep=src_keep)  # (B,S,D)
        return self.sublayers[1].forward(x)  # (B,S,D)

    def infer(self, x: np.ndarray, src_keep: np.ndarray | None) -> np.ndarray:
        x = self.sublayers[0].infer(x, None, src_keep, {})
        return self.sublayers[1].infer(x, None, None, {})

    def backward(self, d_out: np.ndarray) -> np.ndarray:
        d_x, _ = self.sublayers[1].backward(d_out)
        d_x, _ = self.sublayers[0].backward(d_x)
        return d_x


class DecoderBlock(Module):
    """Masked self-attention, cross-attention to the encoder (if any), then feed-forward.

    A decoder-only model's blocks have no cross-attention (`cross=False`).
    """

    def __init__(self, path: str, config: ModelConfig, rng: np.random.Generator,
                 dropout_rng: np.random.Generator, cross: bool):
        super().__init__(path)
        self_attn = MultiHeadAttention(self.child_path(SELF_ATTENTION), config, rng, dropout_rng)
        subs = [Sublayer(self, 1, SELF_ATTENTION, self_attn, config, dropout_rng)]
        if cross:
            cross_attn = MultiHeadAttention(self.child_path(CROSS_ATTENTION), config, rng,
                                            dropout_rng)
            subs.append(Sublayer(self, 2, CROSS_ATTENTION, cross_attn, config, dropout_rng))
        ffn = FeedForward(self.child_path(FEED_FORWARD), config.d_model, config.d_ff,
                          config.activation, rng, config.init_std, config.np_dtype)
        subs.append(Sublayer(self, len(subs) + 1, FEED_FORWARD, ffn, config, dropout_rng))
        self.sublayers = [self.add_child(f"sub{i + 1}", sub) for i, sub in enumerate(subs)]
        self.cross = cross

    def forward(self, x: np.ndarray, tgt_keep: np.ndarray | None,
                memory: np.ndarray | None = None, src_keep: np.ndarray | None = None) -> np.ndarray:
        x = self.sublayers[0].forward(x, keep=tgt_keep)  # (B,T,D)
        if self.cross:
            x = self.sublayers[1].forward(x, memory=memory, keep=src_keep)  # (B,T,D)
        return self.sublayers[-1].forward(x)  # (B,T,D)

    def infer(self, x: np.ndarray, tgt_keep: np.ndarray | None, memory: np.ndarray | None,
              src_keep: np.ndarray | None, caches: list[dict[str, np.ndarray]]) -> np.ndarray:
        """Cached decoding of new positions x (B,T_new,D); one cache dict per sublayer."""
        x = self.sublayers[0].infer(x, None, tgt_keep, caches[0])
        if self.cross:
            x = self.sublayers[1].infer(x, memory, src_keep, caches[1])
        return self.sublayers[-1].infer(x, None, None, caches[-1])

    def backward(self, d_out: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """-> (d_x (B,T,D), d_memory (B,S,D) or None)."""
        d_x, _ = self.sublayers[-1].backward(d_out)
        d_memory = None
        if self.cross:
            d_x, d_memory = self.sublayers[1].backward(d_x)
        d_x, _ = self.sublayers[0].backward(d_x)
        return d_x, d_memory
