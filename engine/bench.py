"""Training-step benchmark: the NumPy engine against PyTorch CPU eager on the same configs.

    python -m engine.bench [--configs tiny,small,medium] [--steps N] [--warmup N]
                           [--threads N] [--record] [--default-allocator]

One step is what training does: forward, loss, backward, Adam update (zeroing the gradients
included). Both sides run a decoder-only model of the same architecture in float32 with dropout
0, on the same token batch, with the same thread budget, each in a subprocess of its own, so one
library's thread pools or allocator state cannot slow (or warm up) the other.

Why paired: a shared or small machine drifts (the same side's median moves 15-30% between runs
minutes apart), so timing all engine steps and then all torch steps compares two machines. Here
both workers start, build their model and wait; the parent then asks for one step at a time:
engine then torch (pair 1), torch then engine (pair 2), ... Both steps of a pair see nearly the
same conditions, so the pair's ratio engine / torch cancels most of the drift; the order
alternates so neither side always runs in the other's wake. Only one side computes at a time
(the idle one blocks reading its pipe), after a short pause that lets the other's threads go
idle. The first `--warmup` pairs run the same way and are discarded. Protocol: the worker
prints {"ready": true}; each "step" line on its stdin -> {"seconds": s, "loss": l}; "stop" ->
one last JSON line (params, first/last loss, events, threads, version) and it exits.

The table (80 columns) gives each side's median and fastest step in milliseconds, and the ratio
as the median of the per-pair ratios with their interquartile range: "0.78x (0.74-0.83)" (2.0
would mean the engine takes twice as long). Tokens/s (batch x length / median) are in the notes.

PyTorch is imported only by the torch worker. Its model is a plain, standard implementation
(nn.Linear for q, k, v and o separately, as the engine does; F.layer_norm, F.softmax,
masked_fill for the causal mask, torch.optim.Adam with its defaults), run eagerly with autograd.
`--record` runs each engine step inside `engine.recorder.recording()`, the trace the explorer
shows, to measure what recording costs (the torch side is unchanged).

Shapes: B batch, T length, V vocabulary, D model width, H heads, F feed-forward width, L layers.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WIDTH = 80  # the table and every note line fit an 80x24 terminal
SETTLE_S = 0.005  # pause before each step: the other side's spinning threads go to sleep
SIDES = ("engine", "torch")


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
    """-> (step() -> loss, info() -> final report) for the NumPy engine, with the trainer's
    thread and allocator settings (BLAS single-threaded, large operations split over `threads`)."""
    from . import parallel
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
    parallel.set_threads(threads)
    if tune_allocator:
        keep_freed_memory()
    loss_fn = CrossEntropyLoss(PAD_ID)
    optimizer = Adam(model.packed, lr=LR)
    inputs, targets = make_batch(config)
    events = [None]

    def train_step() -> float:
        model.packed.zero_grad()
        logits = model.forward(inputs)  # (B,T,V)
        loss = loss_fn.forward(logits, targets)
        model.backward(loss_fn.backward())
        optimizer.step()
        return float(loss)

    def recorded_step() -> float:
        # The hook the explorer uses: every layer emits its events into this recorder.
        with recording() as rec:
            loss = train_step()
        events[0] = len(rec.events)
        return loss

    def info() -> dict:
        return {"params": model.num_params(), "events": events[0], "threads": parallel.threads(),
                "blas_threads": _blas_threads()}

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


# -- parent: run both workers in lockstep, print the table --------------------------------------
class WorkerError(Exception):
    """A worker died or answered nonsense; the message is the last line of its stderr."""


class Worker:
    """One side of one config in a fresh interpreter, driven over its stdin/stdout."""

    def __init__(self, side: str, name: str, args: argparse.Namespace):
        threads = str(args.threads)
        # torch splits work over its own thread pool; the engine splits large operations over
        # engine.parallel's threads and keeps BLAS on one thread inside each (two pools that
        # both want every core would fight over them).
        blas = threads if side == "torch" else "1"
        env = dict(os.environ, OMP_NUM_THREADS=blas, OPENBLAS_NUM_THREADS=blas,
                   MKL_NUM_THREADS=blas)
        root = str(Path(__file__).resolve().parents[1])  # the directory that holds `engine`
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "engine.bench", "--worker", side, "--configs", name,
                   "--threads", threads] + (["--record"] if args.record else []) + (
                   ["--default-allocator"] if args.default_allocator else [])
        # stderr goes to a file, not a pipe: an unread pipe could fill up and block the worker.
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.stderr, text=True)

    def request(self, command: str | None) -> dict:
        """Send `command` (None: only read, for the "ready" line) -> the worker's JSON reply."""
        try:
            if command:
                self.process.stdin.write(command + "\n")
                self.process.stdin.flush()
            return json.loads(self.process.stdout.readline())
        except (OSError, ValueError):  # it exited (broken pipe, empty line) or printed junk
            raise WorkerError(self._last_error()) from None

    def _last_error(self) -> str:
        try:
            self.process.wait(timeout=10)  # it closed its stdout: it is exiting
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr.read().splitlines() if line.strip()]
        return lines[-1] if lines else f"exited with code {self.process.returncode}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


def pair_order(i: int) -> tuple[str, str]:
    """Which side goes first in pair i: engine on even pairs, torch on odd ones."""
    return SIDES if i % 2 == 0 else SIDES[::-1]


def run_config(name: str, args: argparse.Namespace) -> dict[str, dict]:
    """Time both sides of one config in alternating pairs -> {side: {"times": [...], ...}}.

    If one side fails (torch not installed, a crash) its result is {"error": message} and the
    other side goes on alone, so its own timings are still reported."""
    workers = {side: Worker(side, name, args) for side in SIDES}  # both build at the same time
    results: dict[str, dict] = {side: {"times": []} for side in SIDES}

    def call(side: str, command: str | None) -> dict | None:
        if "error" in results[side]:
            return None
        try:
            return workers[side].request(command)
        except WorkerError as error:
            results[side] = {"error": str(error)}
            return None

    try:
        for side in SIDES:
            call(side, None)  # wait for {"ready": true}
        for i in range(-args.warmup, args.steps):  # negative i: warmup pairs, not recorded
            for side in pair_order(i):
                time.sleep(SETTLE_S)
                reply = call(side, "step")
                if reply is not None and i >= 0:
                    results[side]["times"].append(reply["seconds"])
        for side in SIDES:
            final = call(side, "stop")
            if final is not None:
                results[side].update(final)
    finally:
        for worker in workers.values():
            worker.close()
    return results


def summarize(result: dict, tokens: int) -> dict:
    """Median and min milliseconds per step, and tokens per second at the median."""
    if "error" in result:
        return result
    median = statistics.median(result["times"])
    return {**result, "median_ms": median * 1e3, "min_ms": min(result["times"]) * 1e3,
            "tokens_per_s": tokens / median}


def paired_ratio(engine_times: list[float], torch_times: list[float]) -> dict:
    """Median and interquartile range of the per-pair ratios engine_i / torch_i."""
    if len(engine_times) != len(torch_times) or not engine_times:
        raise ValueError("need the same number (at least 1) of engine and torch times")
    ratios = [e / t for e, t in zip(engine_times, torch_times)]
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 \
        else ratios * 3
    return {"ratios": ratios, "median": statistics.median(ratios), "q1": q1, "q3": q3}


def print_table(rows: list[tuple[str, BenchConfig, dict, dict]], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    title = (f"Training step (forward + loss + backward + Adam), float32, {args.threads} "
             f"thread(s), {args.steps} alternating pairs after {args.warmup} warmup"
             + (", engine recording" if args.record else "")
             + (", engine on glibc's default allocator settings" if args.default_allocator else ""))
    table = Table(title=title)
    for i, column in enumerate(["config", "engine ms med (min)", "torch ms med (min)",
                                "engine/torch (IQR)"]):
        table.add_column(column, justify="left" if i == 0 else "right")
    notes, errors = [], []
    for name, config, ours, theirs in rows:
        table.add_row(name, _ms(ours), _ms(theirs), _ratio(ours, theirs))
        errors += [f"{name}: {side} failed: {result['error']}"
                   for side, result in (("engine", ours), ("torch", theirs)) if "error" in result]
        notes += [f"{name}: {config.label()}, {_params(ours, theirs)} params",
                  f"  tokens/s at the median: engine {_rate(ours)}, torch {_rate(theirs)}"]
        if args.record and ours.get("events") is not None:
            notes.append(f"  {ours['events']} trace events per engine step")
    notes.append(f"engine/torch: median of the {args.steps} per-pair ratios (interquartile "
                 "range); each pair runs both back to back, in alternating order")
    losses = [f"{name} {ours['first_loss']:.3f}/{theirs['first_loss']:.3f} "
              f"({np.log(config.vocab_size):.3f})" for name, config, ours, theirs in rows
              if "error" not in ours and "error" not in theirs]
    if losses:
        notes.append("first loss engine/torch (ln V: both start near uniform): "
                     + ", ".join(losses))
    versions = {r.get("version") for *_, r in rows} - {None}
    notes.append(f"torch {', '.join(sorted(versions)) or '-'}, numpy {np.__version__}; "
                 f"load average before the run {args.load:.2f} on {os.cpu_count()} cores"
                 + (" (busy machine: other processes skew both sides)"
                    if args.load > 0.5 else ""))
    # Never wider than 80 columns: in a narrower terminal its width, piped exactly 80.
    terminal = Console()
    Console(width=min(terminal.width, WIDTH) if terminal.is_terminal else WIDTH).print(table)
    for error in errors:  # one line each, cut to fit
        print(error if len(error) <= WIDTH else error[:WIDTH - 3] + "...")
    for note in notes:
        print(textwrap.fill(note, WIDTH, subsequent_indent="    "))


def _params(ours: dict, theirs: dict) -> str:
    counts = {r["params"] for r in (ours, theirs) if "params" in r}
    # Different counts would mean the two sides are not the same architecture.
    return f"{counts.pop():,}" if len(counts) == 1 else " vs ".join(f"{c:,}" for c in sorted(counts))


def _ms(result: dict) -> str:
    return "failed" if "error" in result else f"{result['median_ms']:.2f} ({result['min_ms']:.2f})"


def _rate(result: dict) -> str:
    return "-" if "error" in result else f"{result['tokens_per_s']:,.0f}"


def _ratio(ours: dict, theirs: dict) -> str:
    if "error" in ours or "error" in theirs:
        return "-"
    r = paired_ratio(ours["times"], theirs["times"])
    return f"{r['median']:.2f}x ({r['q1']:.2f}-{r['q3']:.2f})"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m engine.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="tiny,small,medium",
                        help=f"comma-separated, from {', '.join(CONFIGS)}")
    parser.add_argument("--steps", type=int, default=20,
                        help="timed pairs per config (one engine step and one torch step each)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed pairs first (at least 1)")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads each side may use (torch's pool; the engine's own, "
                             "with BLAS single-threaded)")
    parser.add_argument("--record", action="store_true",
                        help="run the engine's steps with trace recording on")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's allocator settings alone on the engine side "
                             "(to measure what engine.memory.keep_freed_memory saves)")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
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
    if args.worker:  # child process: one side, one config, driven by the parent
        config = CONFIGS[args.names[0]]
        if args.worker == "engine":
            step, info = engine_setup(config, args.record, args.threads,
                                      tune_allocator=not args.default_allocator)
        else:
            step, info = torch_setup(config, args.threads)
        serve(step, info)
        return
    args.load = os.getloadavg()[0]
    rows = []
    try:
        for name in args.names:
            config = CONFIGS[name]
            results = run_config(name, args)
            rows.append((name, config, *(summarize(results[s], config.tokens) for s in SIDES)))
    except KeyboardInterrupt:
        sys.exit("interrupted")
    print_table(rows, args)


if __name__ == "__main__":
    main()
