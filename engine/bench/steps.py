"""What the benchmark times: its configs, and the two training steps, one per worker process.

`engine.bench` (the parent) starts one worker per side with `python -m engine.bench --worker
engine|torch`; each builds its model here and then `serve`s: one timed step per "step" line on
stdin, one JSON reply per step, a final report on "stop".

Both sides build the same decoder-only model (GPT-2 style: pre-LN, GELU in its tanh form,
learned positions, untied output) in float32 with dropout 0, on the same token batch. The
torch side is a plain, standard eager implementation: one nn.Linear(D, 3D) for q, k and v
(as the engine computes them, one product), nn.Linear for o, F.layer_norm, F.softmax,
masked_fill for the causal and padding mask, torch.optim.Adam with its defaults.

Shapes: B batch, T length, V vocabulary, D model width, H heads, F feed-forward width, L layers.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

@dataclass(frozen=True)
class BenchConfig:
    """One benchmark size; every model is decoder-only, float32, dropout 0."""

    vocab_size: int  # V
    d_model: int  # D
    n_heads: int  # H
    d_ff: int  # F
    n_layers: int  # L
    batch: int  # B sequences per step
    seq_len: int  # T tokens per sequence

    @property
    def tokens(self) -> int:
        return self.batch * self.seq_len

    def label(self) -> str:
        return (f"V{self.vocab_size} D{self.d_model} H{self.n_heads} F{self.d_ff} "
                f"L{self.n_layers}, {self.batch}x{self.seq_len}")


CONFIGS: dict[str, BenchConfig] = {
    "tiny": BenchConfig(16, 32, 4, 128, 2, batch=32, seq_len=16),
    "small": BenchConfig(64, 128, 4, 512, 4, batch=32, seq_len=64),
    "medium": BenchConfig(256, 256, 8, 1024, 6, batch=16, seq_len=128),
}

# The architecture both sides build (GPT-2 style). Fixed here so the two cannot drift apart.
ARCHITECTURE = dict(norm="pre", activation="gelu", positional="learned", scale_embedding=False,
                    tie_embeddings=False)
PAD_ID = 0  # never drawn in the batch (ids start at 1), but both sides mask and ignore it
LR = 1e-3  # torch.optim.Adam's default; betas (0.9, 0.999) and eps 1e-8 are both sides' defaults
SEED = 0


def make_batch(config: BenchConfig) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (B,T), targets (B,T)) int64: random non-pad ids, targets shifted by one."""
    rng = np.random.default_rng(SEED)
    seq = rng.integers(1, config.vocab_size, size=(config.batch, config.seq_len + 1))
    return seq[:, :-1].copy(), seq[:, 1:].copy()


# -- workers (each runs in its own process, one step per "step" line on stdin) ------------------
def engine_setup(config: BenchConfig, record: bool, threads: int, tune_allocator: bool = True):
    """-> (step() -> loss, info() -> final report) for the NumPy engine, as the trainer runs
    with `--threads N --shards S`: BLAS single-threaded, the batch's rows in S shards side by
    side (engine.training.data_parallel), S = `shards_for` the size (1 for tiny: too small to gain).
    Recording runs one whole pass (a trace is one story)."""
    from ..fast import parallel
    from ..maths.config import DecoderOnlyConfig
    from ..training.data_parallel import DataParallel, shards_for
    from ..maths.loss import CrossEntropyLoss
    from ..training.memory import keep_freed_memory
    from ..maths.models import DecoderOnlyLM
    from ..maths.optim import Adam
    from ..maths.recorder import Recorder, recording

    model = DecoderOnlyLM(DecoderOnlyConfig(
        vocab_size=config.vocab_size, d_model=config.d_model, n_heads=config.n_heads,
        d_ff=config.d_ff, n_layers=config.n_layers, max_len=config.seq_len, dropout=0.0,
        pad_id=PAD_ID, dtype="float32", seed=SEED, **ARCHITECTURE))
    model.train()
    parallel.set_threads(threads)
    if tune_allocator:
        keep_freed_memory()
    shards = shards_for(config.tokens, model.num_params(), threads)
    runner = DataParallel(model, shards, CrossEntropyLoss(PAD_ID))
    optimizer = Adam(model.packed, lr=LR)
    inputs, targets = make_batch(config)
    events = [None]

    def forward_backward() -> float:
        model.packed.zero_grad()
        return runner.step((inputs,), targets).loss  # forward, loss, backward; grads summed

    def train_step() -> float:
        loss = forward_backward()
        optimizer.step()
        return loss

    def recorded_step() -> float:
        # The trace the explorer records (forward, loss, backward: every layer emits its events
        # into this recorder); the update runs outside it, as in a plain step, unrecorded.
        with recording(Recorder(long_lived=[p.data for p in model.params()])) as rec:
            loss = forward_backward()
        optimizer.step()
        events[0] = len(rec.events)
        return loss

    def info() -> dict:
        return {"params": model.num_params(), "events": events[0], "threads": parallel.threads(),
                "shards": shards, "blas_threads": _blas_threads()}

    return (recorded_step if record else train_step), info


def torch_setup(config: BenchConfig, threads: int):
    """A standard PyTorch eager implementation of the same model and step (same return)."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    model = _torch_model(torch, config)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    inputs, targets = (torch.from_numpy(a) for a in make_batch(config))

    def train_step() -> float:
        optimizer.zero_grad(set_to_none=True)
        logits = model(inputs)  # (B,T,V)
        loss = F.cross_entropy(logits.reshape(-1, config.vocab_size), targets.reshape(-1),
                               ignore_index=PAD_ID)
        loss.backward()
        optimizer.step()
        return loss.item()

    def info() -> dict:
        return {"params": sum(p.numel() for p in model.parameters()), "events": None,
                "threads": torch.get_num_threads(), "version": torch.__version__}

    return train_step, info


GEN_PROMPT = 8  # generation: a prompt of this many tokens, then one token per call to the end


def generation_prompt(config: BenchConfig) -> np.ndarray:
    """(1, GEN_PROMPT) int64: the first row of the training batch."""
    return make_batch(config)[0][:1, :GEN_PROMPT].copy()


def engine_generate_setup(config: BenchConfig):
    """-> (generate() -> last id, info()): greedy KV-cached generation at batch 1, one thread,
    from GEN_PROMPT tokens to seq_len (the engine's `infer`, as engine.maths.decode runs it)."""
    from ..maths.config import DecoderOnlyConfig
    from ..maths.models import DecoderOnlyLM

    model = DecoderOnlyLM(DecoderOnlyConfig(
        vocab_size=config.vocab_size, d_model=config.d_model, n_heads=config.n_heads,
        d_ff=config.d_ff, n_layers=config.n_layers, max_len=config.seq_len, dropout=0.0,
        pad_id=PAD_ID, dtype="float32", seed=SEED, **ARCHITECTURE))
    model.eval()
    prompt = generation_prompt(config)

    def generate() -> float:
        cache = model.new_cache()
        logits = model.infer(prompt, cache, 0)[:, -1]  # (1,V)
        for position in range(GEN_PROMPT, config.seq_len):
            token = logits.argmax(axis=-1)[:, None]  # (1,1)
            logits = model.infer(token, cache, position)[:, -1]
        return float(logits.argmax())

    return generate, lambda: {"params": model.num_params(), "events": None}


def torch_generate_setup(config: BenchConfig):
    """The same generation in torch eager: the training model's layers with a KV cache."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    model = _torch_model(torch, config)
    model.eval()
    prompt = torch.from_numpy(generation_prompt(config))

    def generate() -> float:
        with torch.inference_mode():
            cache = [None] * config.n_layers
            logits = model.infer(prompt, cache, 0)[:, -1]  # (1,V)
            for position in range(GEN_PROMPT, config.seq_len):
                token = logits.argmax(dim=-1, keepdim=True)  # (1,1)
                logits = model.infer(token, cache, position)[:, -1]
        return float(logits.argmax())

    return generate, lambda: {"params": sum(p.numel() for p in model.parameters()),
                              "events": None, "version": torch.__version__}


def serve(step, info) -> None:
    """The worker's loop: time one step per "step" line; "stop" (or EOF) -> final report."""
    out = sys.stdout
    sys.stdout = sys.stderr  # a stray print from a library must not corrupt the protocol

    def reply(message: dict) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    reply({"ready": True})
    first = last = None
    # readline blocks in the kernel: the idle side costs no CPU while the other one runs.
    while sys.stdin.readline().strip() == "step":
        start = time.perf_counter()
        last = step()
        reply({"seconds": time.perf_counter() - start, "loss": last})
        first = last if first is None else first
    reply({**info(), "first_loss": first, "last_loss": last})


def _torch_model(torch, config: BenchConfig):
    """The decoder-only LM in plain torch.nn: pre-LN, GELU (tanh), learned positions, untied."""
    import math

    nn, F = torch.nn, torch.nn.functional
    d, h = config.d_model, config.n_heads

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv_proj, self.o_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)

        def forward(self, x, keep, cache=None):
            """cache: None (training), or a one-item list holding (k, v) (B,H,S,K) or None;
            new keys and values are appended (generation)."""
            b, t, _ = x.shape
            q, k, v = (p.reshape(b, t, h, d // h).transpose(1, 2)
                       for p in self.qkv_proj(x).split(d, dim=-1))  # (B,H,T,K)
            if cache is not None:
                if cache[0] is not None:
                    k, v = torch.cat([cache[0][0], k], dim=2), torch.cat([cache[0][1], v], dim=2)
                cache[0] = (k, v)
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(d // h)  # (B,H,T,S)
            if keep is not None:
                scores = scores.masked_fill(~keep, -1e9)
            weights = F.softmax(scores, dim=-1)
            return self.o_proj((weights @ v).transpose(1, 2).reshape(b, t, d))  # (B,T,D)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.attn = nn.LayerNorm(d), Attention()
            self.ln2 = nn.LayerNorm(d)
            self.fc1, self.fc2 = nn.Linear(d, config.d_ff), nn.Linear(config.d_ff, d)

        def forward(self, x, keep, cache=None):
            x = x + self.attn(self.ln1(x), keep, cache)
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok_emb = nn.Embedding(config.vocab_size, d)
            self.pos_emb = nn.Parameter(torch.randn(config.seq_len, d) * 0.02)
            self.blocks = nn.ModuleList(Block() for _ in range(config.n_layers))
            self.ln_f = nn.LayerNorm(d)
            self.lm_head = nn.Linear(d, config.vocab_size)
            causal = torch.tril(torch.ones(config.seq_len, config.seq_len, dtype=torch.bool))
            self.register_buffer("causal", causal[None, None])  # (1,1,T,T)

        def forward(self, ids):
            t = ids.shape[1]
            keep = self.causal[..., :t, :t] & (ids != PAD_ID)[:, None, None, :]  # as the engine
            x = self.tok_emb(ids) + self.pos_emb[:t]  # (B,T,D)
            for block in self.blocks:
                x = block(x, keep)
            return self.lm_head(self.ln_f(x))  # (B,T,V)

        def infer(self, ids, caches, offset):
            """New ids (B,t) at positions offset.. -> logits (B,t,V); caches: one per block."""
            t = ids.shape[1]
            keep = self.causal[..., offset:offset + t, :offset + t] if t > 1 else None
            x = self.tok_emb(ids) + self.pos_emb[offset:offset + t]
            for i, block in enumerate(self.blocks):
                slot = [caches[i]]
                x = block(x, keep, slot)
                caches[i] = slot[0]
            return self.lm_head(self.ln_f(x))

    return LM()


def _blas_threads() -> int | None:
    """Threads numpy's BLAS uses here, from the environment the parent set (None if unset)."""
    value = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    return int(value) if value else None
