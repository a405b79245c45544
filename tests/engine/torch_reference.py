"""An independent PyTorch implementation of both engine models: the oracle of the tests.

Written from the architecture contract, not from the engine's code: plain `torch.nn` modules
(Linear, Embedding, LayerNorm) and autograd, no `nn.Transformer`, no shared helpers with the
engine. If the engine and this file agree on logits, loss and every gradient, both implement
the same maths; autograd checks the engine's hand-written backward.

Shapes: B batch, S source length, T target length, D model width, H heads, K head width (D/H),
F feed-forward width, V vocabulary.

    embed       x = E[ids] * (sqrt(D) if scale_embedding else 1) + P[:T], then dropout
    attention   softmax(mask(q k^T / sqrt(K))) v per head, masked scores filled with -1e9;
                a query that may see no key at all (a left pad under a causal mask) attends
                to nothing: its weights are zero, so its context is zero
    post-LN     x = LN(x + drop(f(x)))
    pre-LN      x = x + drop(f(LN(x))); the stack ends with ln_f
    head        logits = h W + b, or h E^T when the embeddings are tied (no bias)

`config` is any object with the engine config's field names (the engine config itself works).
Dropout layers exist so the architecture is complete, but their random masks cannot match the
engine's: compare with dropout 0.

`load_from_engine(model, state_dict)` copies the engine's {name: (in, out) ndarray} weights in;
`engine_grads(model)` hands the gradients back under the engine's names, transposed to (in, out).
Both go through one explicit name map, checked to use every engine name and every torch
parameter exactly once.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MASK_FILL = -1e9  # the spec's fill for masked scores: finite, so a fully masked row gives no NaN


# -- masks ------------------------------------------------------------------------------------
def key_keep(ids: torch.Tensor, pad_id: int | None) -> torch.Tensor | None:
    """(B,1,1,L) True where the key is a real token; None when there is no pad id."""
    if pad_id is None:
        return None
    return (ids != pad_id)[:, None, None, :]


def causal_keep(ids: torch.Tensor, pad_id: int | None) -> torch.Tensor:
    """(B|1,1,T,T) True where query t may see key s: s <= t and key s is not padding."""
    t = ids.shape[1]
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool, device=ids.device))[None, None]
    pad = key_keep(ids, pad_id)
    return causal if pad is None else causal & pad


def sinusoid_table(max_len: int, d_model: int, dtype: torch.dtype) -> torch.Tensor:
    """PE[p, 2i] = sin(p * exp(-2i ln(10000) / D)), PE[p, 2i+1] = cos(same); (L, D).

    The exp-log form of the Annotated Transformer on purpose: same numbers as 10000^(2i/D),
    computed another way.
    """
    position = torch.arange(max_len, dtype=torch.float64)[:, None]  # (L, 1)
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64)
                    * (-math.log(10000.0) / d_model))  # (ceil(D/2),)
    table = torch.zeros(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div[: d_model // 2])
    return table.to(dtype)


# -- layers -----------------------------------------------------------------------------------
class Attention(nn.Module):
    """Multi-head attention with separate q/k/v/o projections (nn.Linear: y = x W^T + b)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.o_proj = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape
        return x.view(b, length, self.n_heads, d // self.n_heads).transpose(1, 2)  # (B,H,L,K)

    def forward(self, x_q: torch.Tensor, x_kv: torch.Tensor,
                keep: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x_q.shape
        q, k, v = self._heads(self.q_proj(x_q)), self._heads(self.k_proj(x_kv)), \
            self._heads(self.v_proj(x_kv))  # (B,H,T,K) (B,H,S,K) (B,H,S,K)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.n_heads)  # (B,H,T,S)
        weights = F.softmax(scores if keep is None else scores.masked_fill(~keep, MASK_FILL),
                            dim=-1)  # (B,H,T,S)
        if keep is not None:  # rows that see no key: zero, not uniform over every key
            weights = weights.masked_fill(~keep.any(dim=-1, keepdim=True), 0.0)
        weights = self.drop(weights)
        context = (weights @ v).transpose(1, 2).reshape(b, t, d)  # (B,T,D)
        return self.o_proj(context)


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, activation: str):
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)  # (B,T,F)
        h = F.relu(h) if self.activation == "relu" else F.gelu(h, approximate="tanh")
        return self.fc2(h)  # (B,T,D)


class Block(nn.Module):
    """Encoder or decoder-only block (cross=False), or encoder-decoder decoder block (cross=True).

    LayerNorms are numbered in sublayer order: ln1 self-attention, [ln2 cross-attention],
    last one for the feed-forward.
    """

    def __init__(self, config, cross: bool):
        super().__init__()
        d, eps = config.d_model, config.ln_eps
        self.pre = config.norm == "pre"
        self.self_attn = Attention(d, config.n_heads, config.dropout)
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.cross_attn = Attention(d, config.n_heads, config.dropout) if cross else None
        self.ln2 = nn.LayerNorm(d, eps=eps)
        self.ln3 = nn.LayerNorm(d, eps=eps) if cross else None
        self.ffn = FeedForward(d, config.d_ff, config.activation)
        self.drop = nn.Dropout(config.dropout)

    def _sublayer(self, x: torch.Tensor, norm: nn.LayerNorm, f) -> torch.Tensor:
        if self.pre:
            return x + self.drop(f(norm(x)))
        return norm(x + self.drop(f(x)))

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None,
                memory: torch.Tensor | None = None, memory_keep: torch.Tensor | None = None):
        x = self._sublayer(x, self.ln1, lambda h: self.self_attn(h, h, keep))
        if self.cross_attn is not None:
            x = self._sublayer(x, self.ln2, lambda h: self.cross_attn(h, memory, memory_keep))
            return self._sublayer(x, self.ln3, self.ffn)
        return self._sublayer(x, self.ln2, self.ffn)


class Embed(nn.Module):
    """ids (B,L) -> dropout(E[ids] * scale + P[:L]) (B,L,D); P learned or a fixed buffer."""

    def __init__(self, config, dtype: torch.dtype):
        super().__init__()
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
        if config.positional == "learned":
            self.pos_emb = nn.Parameter(torch.zeros(config.max_len, config.d_model))
        else:
            self.pos_emb = None
            self.register_buffer("pos_table", sinusoid_table(config.max_len, config.d_model, dtype))
        self.drop = nn.Dropout(config.dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = self.pos_emb if self.pos_emb is not None else self.pos_table
        return self.drop(self.tok_emb(ids) * self.scale + pos[: ids.shape[1]])


class Stack(nn.Module):
    """Embedding, blocks, and (pre-LN only) the final LayerNorm."""

    def __init__(self, config, cross: bool, dtype: torch.dtype):
        super().__init__()
        self.embed = Embed(config, dtype)
        self.blocks = nn.ModuleList(Block(config, cross) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model, eps=config.ln_eps) if config.norm == "pre" else None

    def forward(self, ids, keep, memory=None, memory_keep=None) -> torch.Tensor:
        x = self.embed(ids)  # (B,L,D)
        for block in self.blocks:
            x = block(x, keep, memory, memory_keep)
        return self.ln_f(x) if self.ln_f is not None else x


class Head(nn.Module):
    """logits = h W + b, or h E^T with the (target) token embedding when tied."""

    def __init__(self, config, embedding: nn.Embedding):
        super().__init__()
        self.tied = embedding if config.tie_embeddings else None
        self.lm_head = None if config.tie_embeddings else nn.Linear(config.d_model, config.vocab_size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.tied is not None:
            return h @ self.tied.weight.T  # (B,T,V)
        return self.lm_head(h)


# -- models -----------------------------------------------------------------------------------
class TorchDecoderOnly(nn.Module):
    def __init__(self, config, dtype: torch.dtype = torch.float64):
        super().__init__()
        self.config = config
        self.decoder = Stack(config, cross=False, dtype=dtype)
        self.head = Head(config, self.decoder.embed.tok_emb)
        self.to(dtype)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B,T) -> logits (B,T,V)."""
        return self.head(self.decoder(ids, causal_keep(ids, self.config.pad_id)))


class TorchEncoderDecoder(nn.Module):
    def __init__(self, config, dtype: torch.dtype = torch.float64):
        super().__init__()
        self.config = config
        self.encoder = Stack(config, cross=False, dtype=dtype)
        self.decoder = Stack(config, cross=True, dtype=dtype)
        self.head = Head(config, self.decoder.embed.tok_emb)
        self.to(dtype)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """src (B,S), tgt_in (B,T) -> logits (B,T,V)."""
        pad = self.config.pad_id
        src_keep = key_keep(src, pad)  # (B,1,1,S)
        memory = self.encoder(src, src_keep)  # (B,S,D)
        return self.head(self.decoder(tgt_in, causal_keep(tgt_in, pad), memory, src_keep))


def build_torch_model(config, dtype: torch.dtype = torch.float64) -> nn.Module:
    """The reference model for an engine config (decided by its `kind`)."""
    if config.kind == "encoder_decoder":
        return TorchEncoderDecoder(config, dtype)
    if config.kind == "decoder_only":
        return TorchDecoderOnly(config, dtype)
    raise ValueError(f"unknown config kind {config.kind!r}")


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, pad_id: int | None,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean label-smoothed cross-entropy over targets that are not padding."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=-100 if pad_id is None else pad_id,
                           label_smoothing=label_smoothing)


# -- weights in, gradients out ----------------------------------------------------------------
def _linear(name: str, layer: nn.Linear) -> dict[str, tuple[nn.Parameter, bool]]:
    return {f"{name}.w": (layer.weight, True), f"{name}.b": (layer.bias, False)}


def _norm(name: str, layer: nn.LayerNorm) -> dict[str, tuple[nn.Parameter, bool]]:
    return {f"{name}.gamma": (layer.weight, False), f"{name}.beta": (layer.bias, False)}


def _attention(name: str, attn: Attention) -> dict[str, tuple[nn.Parameter, bool]]:
    out = {}
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
        out.update(_linear(f"{name}.{proj}", getattr(attn, proj)))
    return out


def _stack(prefix: str, stack: Stack) -> dict[str, tuple[nn.Parameter, bool]]:
    """Engine names of one stack. Blocks with cross-attention: ln1 self, ln2 cross, ln3 ffn;
    every other block: ln1 self, ln2 ffn."""
    out = {f"{prefix}tok_emb.weight": (stack.embed.tok_emb.weight, False)}
    if stack.embed.pos_emb is not None:
        out[f"{prefix}pos_emb.weight"] = (stack.embed.pos_emb, False)
    for i, block in enumerate(stack.blocks):
        name = f"{prefix}blocks.{i}"
        out.update(_attention(f"{name}.self_attn", block.self_attn))
        out.update(_norm(f"{name}.ln1", block.ln1))
        if block.cross_attn is not None:
            out.update(_attention(f"{name}.cross_attn", block.cross_attn))
            out.update(_norm(f"{name}.ln2", block.ln2))
            out.update(_norm(f"{name}.ln3", block.ln3))
        else:
            out.update(_norm(f"{name}.ln2", block.ln2))
        out.update(_linear(f"{name}.ffn.fc1", block.ffn.fc1))
        out.update(_linear(f"{name}.ffn.fc2", block.ffn.fc2))
    if stack.ln_f is not None:
        out.update(_norm(f"{prefix}ln_f", stack.ln_f))
    return out


def name_map(model: nn.Module) -> dict[str, tuple[nn.Parameter, bool]]:
    """{engine name: (torch parameter, transpose?)} spelled out for both models.

    Checks that every trainable torch parameter appears exactly once (a tied embedding is one
    parameter with one engine name).
    """
    if isinstance(model, TorchEncoderDecoder):
        mapping = {**_stack("encoder.", model.encoder), **_stack("decoder.", model.decoder)}
    elif isinstance(model, TorchDecoderOnly):
        mapping = _stack("", model.decoder)
    else:
        raise TypeError(f"not a reference model: {type(model).__name__}")
    if model.head.lm_head is not None:
        mapping.update(_linear("lm_head", model.head.lm_head))
    used = [id(p) for p, _ in mapping.values()]
    assert len(used) == len(set(used)), "a torch parameter is mapped to two engine names"
    every = {id(p) for p in model.parameters()}
    assert set(used) == every, (
        f"{len(every - set(used))} torch parameter(s) have no engine name in the map")
    return mapping


def load_from_engine(model: nn.Module, state_dict: dict[str, np.ndarray]) -> None:
    """Copy the engine's {name: ndarray} into the reference model; names must match 1:1."""
    mapping = name_map(model)
    missing, unexpected = sorted(set(mapping) - set(state_dict)), sorted(set(state_dict) - set(mapping))
    assert not missing and not unexpected, (
        f"engine/torch name mismatch: the engine lacks {missing}, torch lacks {unexpected}")
    with torch.no_grad():
        for name, (param, transpose) in mapping.items():
            value = torch.as_tensor(np.asarray(state_dict[name]), dtype=param.dtype)
            value = value.T if transpose else value  # engine (in, out) -> nn.Linear (out, in)
            assert value.shape == param.shape, (
                f"{name}: engine shape {tuple(value.shape)} != torch shape {tuple(param.shape)}")
            param.copy_(value)


def engine_grads(model: nn.Module) -> dict[str, np.ndarray]:
    """{engine name: gradient as the engine stores it ((in, out) for linear weights)}."""
    grads = {}
    for name, (param, transpose) in name_map(model).items():
        g = torch.zeros_like(param) if param.grad is None else param.grad
        grads[name] = (g.T if transpose else g).detach().cpu().numpy().copy()
    return grads
