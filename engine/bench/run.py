"""Training-step benchmark: the NumPy engine against PyTorch CPU eager on the same configs.

    python -m engine.bench [--configs tiny,small,medium] [--steps N] [--warmup N]
                           [--threads N] [--record] [--default-allocator]
                           [--generate small]

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

The two steps (the same decoder-only model on both sides) and the worker loop are in
`engine.bench.steps`; PyTorch is imported only by the torch worker. The engine runs the step
as training does with `--threads N --shards S`: each of S threads takes the forward and
backward of 1/S of the batch's rows, and the gradients are summed (engine.training.data_parallel);
S is `shards_for` the size: N for small and medium, 1 for tiny (too little work to share). `--record` runs
each engine step inside `engine.maths.recorder.recording()`, the trace the explorer shows, to
measure what recording costs; a recorded step is one whole pass (the torch side is unchanged).

Generation rows ("small gen", `--generate`, "" for none): greedy KV-cached generation at
batch 1 from an 8-token prompt to the config's length, one thread each side, timed and paired
the same way (one whole generation per "step"); tokens/s are in the notes.

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
from pathlib import Path

import numpy as np

from .steps import (CONFIGS, GEN_PROMPT, BenchConfig, engine_generate_setup, engine_setup,
                          serve, torch_generate_setup, torch_setup)

WIDTH = 80  # the table and every note line fit an 80x24 terminal
SETTLE_S = 0.005  # pause before each step: the other side's spinning threads go to sleep
SIDES = ("engine", "torch")
GEN_SUFFIX = " gen"  # a generation row's name: "small gen"


# -- parent: run both workers in lockstep, print the table --------------------------------------
class WorkerError(Exception):
    """A worker died or answered nonsense; the message is the last line of its stderr."""


class Worker:
    """One side of one config in a fresh interpreter, driven over its stdin/stdout."""

    def __init__(self, side: str, name: str, args: argparse.Namespace, generation: bool = False):
        threads = "1" if generation else str(args.threads)
        # torch splits work over its own thread pool; the engine runs one shard of the batch
        # per thread (engine.training.data_parallel) and keeps BLAS on one thread inside each (two pools
        # that both want every core would fight over them).
        blas = threads if side == "torch" else "1"
        env = dict(os.environ, OMP_NUM_THREADS=blas, OPENBLAS_NUM_THREADS=blas,
                   MKL_NUM_THREADS=blas)
        root = str(Path(__file__).resolve().parents[1])  # the directory that holds `engine`
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "engine.bench", "--worker", side, "--configs", name,
                   "--threads", threads] + (["--record"] if args.record else []) + (
                   ["--default-allocator"] if args.default_allocator else []) + (
                   ["--generation"] if generation else [])
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


def run_config(name: str, args: argparse.Namespace, generation: bool = False) -> dict[str, dict]:
    """Time both sides of one config in alternating pairs -> {side: {"times": [...], ...}}.

    If one side fails (torch not installed, a crash) its result is {"error": message} and the
    other side goes on alone, so its own timings are still reported."""
    workers = {side: Worker(side, name, args, generation) for side in SIDES}  # built together
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
        if name.endswith(GEN_SUFFIX):
            notes += [f"{name}: greedy KV-cached generation, batch 1, {GEN_PROMPT} -> "
                      f"{config.seq_len} tokens, one thread each",
                      f"  tokens/s at the median: engine {_rate(ours)}, torch {_rate(theirs)}"]
            continue
        shards = f", engine in {ours['shards']} shard(s)" if "shards" in ours else ""
        notes += [f"{name}: {config.label()}, {_params(ours, theirs)} params{shards}",
                  f"  tokens/s at the median: engine {_rate(ours)}, torch {_rate(theirs)}"]
        if args.record and ours.get("events") is not None:
            notes.append(f"  {ours['events']} trace events per engine step")
    notes.append(f"engine/torch: median of the {args.steps} per-pair ratios (interquartile "
                 "range); each pair runs both back to back, in alternating order")
    losses = [f"{name} {ours['first_loss']:.3f}/{theirs['first_loss']:.3f} "
              f"({np.log(config.vocab_size):.3f})" for name, config, ours, theirs in rows
              if "error" not in ours and "error" not in theirs and not name.endswith(GEN_SUFFIX)]
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
                        help="threads each side may use (torch's pool; the engine's: one "
                             "shard of the batch per thread, BLAS single-threaded)")
    parser.add_argument("--record", action="store_true",
                        help="run the engine's steps with trace recording on")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's allocator settings alone on the engine side "
                             "(to measure what engine.training.memory.keep_freed_memory saves)")
    parser.add_argument("--generate", default="small",
                        help="comma-separated configs to time generation at batch 1 on "
                             "(one thread each side); empty for none")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--generation", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or not names:
        parser.error(f"--configs: unknown {unknown or 'empty list'}; choose from {', '.join(CONFIGS)}")
    if args.steps < 1 or args.warmup < 1 or args.threads < 1:
        parser.error("--steps, --warmup and --threads must be at least 1")
    gen_names = [n.strip() for n in args.generate.split(",") if n.strip()]
    if any(n not in CONFIGS for n in gen_names):
        parser.error(f"--generate: unknown {[n for n in gen_names if n not in CONFIGS]}; "
                     f"choose from {', '.join(CONFIGS)}")
    args.names, args.gen_names = names, gen_names
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:  # child process: one side, one config, driven by the parent
        config = CONFIGS[args.names[0]]
        if args.generation:
            setup = engine_generate_setup if args.worker == "engine" else torch_generate_setup
            serve(*setup(config))
            return
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
        for name in args.gen_names:
            config = CONFIGS[name]
            results = run_config(name, args, generation=True)
            rows.append((name + GEN_SUFFIX, config, *(summarize(
                results[s], config.seq_len - GEN_PROMPT) for s in SIDES)))
    except KeyboardInterrupt:
        sys.exit("interrupted")
    print_table(rows, args)

