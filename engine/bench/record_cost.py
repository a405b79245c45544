"""What recording costs: the engine's recorded training step against its unrecorded one.

    python -m engine.bench.record_cost [--config small] [--steps 30] [--warmup 3] [--threads 1]

Two engine workers (the benchmark's own: `python -m engine.bench --worker engine`, one with
`--record`, one without) build the same model on the same batch and then take turns step by
step, in alternating order, as `python -m engine.bench` pairs the engine with torch: the ratio
is the median of the per-pair ratios recorded / unrecorded, with its interquartile range, so a
machine that slows down during the run moves both steps of a pair alike. A recorded step
records forward, loss and backward (the explorer's trace); the update runs unrecorded.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from .run import SETTLE_S, Worker, WorkerError, paired_ratio
from .steps import CONFIGS

KINDS = ("recorded", "unrecorded")


def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    """{kind: step seconds}, the two workers stepped in alternating pairs."""
    workers = {kind: Worker("engine", args.config, argparse.Namespace(
        threads=args.threads, record=kind == "recorded", default_allocator=False))
        for kind in KINDS}
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    try:
        for worker in workers.values():
            worker.request(None)  # {"ready": true}
        for i in range(-args.warmup, args.steps):  # negative i: warmup pairs, not kept
            for kind in KINDS if i % 2 == 0 else KINDS[::-1]:
                time.sleep(SETTLE_S)
                reply = workers[kind].request("step")
                if i >= 0:
                    times[kind].append(reply["seconds"])
        for worker in workers.values():
            worker.request("stop")
    finally:
        for worker in workers.values():
            worker.close()
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.record_cost",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="small", choices=list(CONFIGS))
    parser.add_argument("--steps", type=int, default=30, help="timed pairs")
    parser.add_argument("--warmup", type=int, default=3, help="untimed pairs first")
    parser.add_argument("--threads", type=int, default=1, help="the engine's threads")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 1 or args.threads < 1:
        parser.error("--steps, --warmup and --threads must be at least 1")
    load = os.getloadavg()[0]
    try:
        times = measure(args)
    except WorkerError as error:
        sys.exit(f"a worker failed: {error}")
    ratio = paired_ratio(times["recorded"], times["unrecorded"])
    medians = {kind: statistics.median(times[kind]) * 1e3 for kind in KINDS}
    print(f"{args.config}, {args.threads} thread(s), {args.steps} alternating pairs after "
          f"{args.warmup} warmup")
    print(f"load average before the run {load:.2f} on {os.cpu_count()} cores")
    print(f"recorded step {medians['recorded']:.1f} ms, unrecorded {medians['unrecorded']:.1f} ms "
          f"(medians)")
    print(f"recorded / unrecorded: {ratio['median']:.3f}x ({ratio['q1']:.3f}-{ratio['q3']:.3f}), "
          f"median of the per-pair ratios (IQR)")


if __name__ == "__main__":
    main()
