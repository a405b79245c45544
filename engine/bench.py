"""Training-step benchmark: the NumPy engine against PyTorch CPU eager on the same configs.

    python -m engine.bench [--configs tiny,small,medium] [--steps N] [--warmup N] [--record]

One step is what training does: forward, loss, backward, Adam update (zeroing the gradients
included). Both sides run a decoder-only model of the same architecture in float32 with dropout
0, on the same token batch, with the same thread budget; each side runs in a subprocess of its
own, so one library's thread pools or allocator state cannot slow (or warm up) the other. The
table gives the median and the fastest step in milliseconds, tokens per second (batch x length
/ median), and the ratio engine / torch (2.0 means the engine takes twice as long).

PyTorch is imported only by the torch worker: the engine never needs it. The torch model is a
plain, standard implementation (nn.Linear for q, k, v and o separately, as the engine does;
F.layer_norm, F.softmax, masked_fill for the causal mask, torch.optim.Adam with its defaults),
run eagerly with autograd.

`--record` runs each engine step inside `engine.recorder.recording()`, the trace the explorer
shows; it measures what recording costs (the torch side is unchanged).

Shapes: B batch, T length, V vocabulary, D model width, H heads, F feed-forward width, L layers.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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


# -- workers (each runs in its own process) -----------------------------------------------------
def _time_steps(step, steps: int, warmup: int) -> tuple[list[float], float, float]:
    """Run `step` warmup + steps times; -> (seconds per timed step, first loss, last loss)."""
    first = step()
    for _ in range(warmup - 1):
        step()
    times, loss = [], first
    for _ in range(steps):
        start = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - start)
    return times, first, loss


def engine_worker(config: BenchConfig, steps: int, warmup: int, record: bool,
                  tune_allocator: bool = True) -> dict:
    """Time the NumPy engine's training step (with the allocator setting the trainer uses)."""
    from .config import DecoderOnlyConfig
    from .loss import CrossEntropyLoss
    from .memory import keep_freed_memory
    from .models import DecoderOnlyLM
    from .optim import Adam
    from .recorder import recording

    model = DecoderOnlyLM(DecoderOnlyConfig(
        vocab_size=config.vocab_size, d_model=config.d_model, n_heads=config.n_heads,
        d_ff=config.d_ff, n_layers=config.n_layers, max_len=config.seq_len, dropout=0.0,
        pad_id=PAD_ID, dtype="float32", seed=SEED, **ARCHITECTURE))
    model.train()
    if tune_allocator:
        keep_freed_memory()
    loss_fn = CrossEntropyLoss(PAD_ID)
    optimizer = Adam(model.packed, lr=LR)
    inputs, targets = make_batch(config)
    events = [0]

    def train_step() -> float:
        model.packed.zero_grad()
        logits = model.forward(inputs)  # (B,T,V)
        loss = loss_fn.forward(logits, targets)
        model.backward(loss_fn.backward())
        optimizer.step()
        return loss

    def recorded_step() -> float:
        # The hook the explorer uses: every layer emits its events into this recorder.
        with recording() as rec:
            loss = train_step()
        events[0] = len(rec.events)
        return loss

    times, first, last = _time_steps(recorded_step if record else train_step, steps, warmup)
    return {"times": times, "params": model.num_params(), "first_loss": first, "last_loss": last,
            "events": events[0] if record else None, "threads": _blas_threads()}


def torch_worker(config: BenchConfig, steps: int, warmup: int, threads: int) -> dict:
    """Time a standard PyTorch eager implementation of the same model and step."""
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

    times, first, last = _time_steps(train_step, steps, warmup)
    n_params = sum(p.numel() for p in model.parameters())
    return {"times": times, "params": n_params, "first_loss": first, "last_loss": last,
            "events": None, "threads": torch.get_num_threads(), "version": torch.__version__}


def _torch_model(torch, config: BenchConfig):
    """The decoder-only LM in plain torch.nn: pre-LN, GELU (tanh), learned positions, untied."""
    import math

    nn, F = torch.nn, torch.nn.functional
    d, h = config.d_model, config.n_heads

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
            self.v_proj, self.o_proj = nn.Linear(d, d), nn.Linear(d, d)

        def forward(self, x, keep):
            b, t, _ = x.shape
            q, k, v = (p(x).view(b, t, h, d // h).transpose(1, 2)
                       for p in (self.q_proj, self.k_proj, self.v_proj))  # (B,H,T,K)
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(d // h)  # (B,H,T,T)
            weights = F.softmax(scores.masked_fill(~keep, -1e9), dim=-1)
            return self.o_proj((weights @ v).transpose(1, 2).reshape(b, t, d))  # (B,T,D)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.attn = nn.LayerNorm(d), Attention()
            self.ln2 = nn.LayerNorm(d)
            self.fc1, self.fc2 = nn.Linear(d, config.d_ff), nn.Linear(config.d_ff, d)

        def forward(self, x, keep):
            x = x + self.attn(self.ln1(x), keep)
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

    return LM()


def _blas_threads() -> int | None:
    """Threads numpy's BLAS uses here, from the environment the parent set (None if unset)."""
    value = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    return int(value) if value else None


# -- parent: run the workers, print the table ----------------------------------------------------
def run_worker(side: str, name: str, args: argparse.Namespace) -> dict:
    """Run one side of one config in a fresh interpreter; its result comes back as JSON."""
    threads = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
               MKL_NUM_THREADS=threads)
    root = str(Path(__file__).resolve().parents[1])  # the directory that holds `engine`
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "engine.bench", "--worker", side, "--configs", name,
               "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--threads", threads] + (["--record"] if args.record else []) + (
               ["--default-allocator"] if args.default_allocator else [])
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail}
    return json.loads(lines[-1])


def summarize(result: dict, tokens: int) -> dict:
    """Median and min milliseconds per step, and tokens per second at the median."""
    if "error" in result:
        return result
    times = result["times"]
    median = statistics.median(times)
    return {**result, "median_ms": median * 1e3, "min_ms": min(times) * 1e3,
            "tokens_per_s": tokens / median}


def print_table(rows: list[tuple[str, BenchConfig, dict, dict]], args: argparse.Namespace) -> None:
    title = (f"Training step (forward + loss + backward + Adam), float32, {args.threads} thread(s), "
             f"median of {args.steps} after {args.warmup} warmup"
             + (", engine recording" if args.record else "")
             + (", engine on glibc's default allocator settings" if args.default_allocator else ""))
    header = ["config", "V D H F L, BxT", "params", "engine ms: med (min)",
              "torch ms: med (min)", "engine tok/s", "torch tok/s", "engine/torch"]
    body = [[name, config.label(), _params(ours, theirs), _ms(ours), _ms(theirs), _rate(ours),
             _rate(theirs), _ratio(ours, theirs)] for name, config, ours, theirs in rows]
    notes = [f"{name}: {side} failed: {result['error']}" for name, _, ours, theirs in rows
             for side, result in (("engine", ours), ("torch", theirs)) if "error" in result]
    if args.record:
        notes += [f"{name}: {ours['events']} trace events per step" for name, _, ours, _ in rows
                  if "events" in ours]
    notes += [f"{name}: first loss engine {ours['first_loss']:.3f}, torch {theirs['first_loss']:.3f} "
              f"(ln V = {np.log(config.vocab_size):.3f}: both start near uniform)"
              for name, config, ours, theirs in rows if "error" not in ours and "error" not in theirs]
    versions = {r.get("version") for *_, r in rows} - {None}
    notes.append(f"torch {', '.join(sorted(versions)) or '-'}, numpy {np.__version__}; "
                 f"load average before the run {args.load:.2f} on {os.cpu_count()} cores"
                 + (" (busy machine: other processes skew both sides)"
                    if args.load > 0.5 else ""))
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
        print(title)
        for row in [header, *body]:
            print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)))
    else:
        console = Console()
        if not console.is_terminal:  # piped or captured: do not squeeze into 80 columns
            console = Console(width=140)
        table = Table(title=title)
        for i, column in enumerate(header):
            table.add_column(column, justify="left" if i < 2 else "right")
        for row in body:
            table.add_row(*map(str, row))
        console.print(table)
    for note in notes:
        print(note)


def _params(ours: dict, theirs: dict) -> str:
    counts = {r["params"] for r in (ours, theirs) if "params" in r}
    # Different counts would mean the two sides are not the same architecture.
    return f"{counts.pop():,}" if len(counts) == 1 else " vs ".join(f"{c:,}" for c in sorted(counts))


def _ms(result: dict) -> str:
    return "-" if "error" in result else f"{result['median_ms']:.2f} ({result['min_ms']:.2f})"


def _rate(result: dict) -> str:
    return "-" if "error" in result else f"{result['tokens_per_s']:,.0f}"


def _ratio(ours: dict, theirs: dict) -> str:
    if "error" in ours or "error" in theirs:
        return "-"
    return f"{ours['median_ms'] / theirs['median_ms']:.2f}x"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m engine.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="tiny,small,medium",
                        help=f"comma-separated, from {', '.join(CONFIGS)}")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per config and side")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (at least 1)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS / torch threads, both sides")
    parser.add_argument("--record", action="store_true",
                        help="run the engine's steps with trace recording on")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's allocator settings alone on the engine side "
                             "(to measure what engine.memory.keep_freed_memory saves)")
    parser.add_argument("--worker", choices=["engine", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or not names:
        parser.error(f"--configs: unknown {unknown or 'empty list'}; choose from {', '.join(CONFIGS)}")
    if args.steps < 1 or args.warmup < 1 or args.threads < 1:
        parser.error("--steps, --warmup and --threads must be at least 1")
    args.names = names
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:  # child process: one side, one config, JSON on stdout
        config = CONFIGS[args.names[0]]
        if args.worker == "engine":
            result = engine_worker(config, args.steps, args.warmup, args.record,
                                   tune_allocator=not args.default_allocator)
        else:
            result = torch_worker(config, args.steps, args.warmup, args.threads)
        print(json.dumps(result))
        return
    args.load = os.getloadavg()[0]
    rows = []
    for name in args.names:
        config = CONFIGS[name]
        ours = summarize(run_worker("engine", name, args), config.tokens)
        theirs = summarize(run_worker("torch", name, args), config.tokens)
        rows.append((name, config, ours, theirs))
    print_table(rows, args)


if __name__ == "__main__":
    main()
