"""What the probe costs the in-app trainer: a probe forward at each snapshot the trainer keeps
(every SNAPSHOT_EVERY steps; the snapshots are the trainer's own, taken with or without the
probe), on the reversal scenario. Not a test: run it and
read the numbers.

    python tests/tui/measure_probe_overhead.py [STEPS] [REPEATS]

Two measurements:
- throughput: the controller's `run_for` training STEPS steps with and without the probe watch
  hooked in (runs interleaved, so drift in machine load hits both sides; medians);
- per operation: the median time of one training step and of one probe forward, and the share
  the probe takes at its interval: probe / (SNAPSHOT_EVERY x step + probe). This
  one holds up on a busy machine, where whole-run throughput swings by more than 5%.
"""
from __future__ import annotations

import statistics
import sys
import time

from scenarios import load_scenario
from tui_tfs.probe_watch import ProbeWatch
from tui_tfs.training import SNAPSHOT_EVERY, TrainingController


def controller(probed: bool) -> TrainingController:
    scenario = load_scenario("reverse")
    c = TrainingController(scenario, scenario.build_model(), eval_every=0)
    if probed:
        c.step_watchers.append(ProbeWatch(c))
    return c


def throughput(steps: int, probed: bool) -> float:
    """steps/s of `run_for` over `steps` steps (after 3 warm-up steps)."""
    c = controller(probed)
    c.total_steps = 3
    c.start()
    while c.running:
        c.run_for(1.0)
    c.total_steps = 3 + steps
    c.start()
    start = time.perf_counter()
    while c.running:
        c.run_for(1.0)
    return steps / (time.perf_counter() - start)


def per_operation(samples: int) -> tuple[float, float]:
    """(median seconds of one training step, median seconds of one probe)."""
    c = controller(False)
    watch = ProbeWatch(c)
    step_times, probe_times = [], []
    for _ in range(samples):
        start = time.perf_counter()
        c.trainer.step()
        step_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        watch.probe_now(c)
        probe_times.append(time.perf_counter() - start)
    return statistics.median(step_times), statistics.median(probe_times)


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print(f"reverse, a probe every {SNAPSHOT_EVERY} steps", flush=True)
    step, probe = per_operation(max(30, steps // 10))
    share = probe / (SNAPSHOT_EVERY * step + probe)
    print(f"one step {1000 * step:.2f} ms, one probe forward {1000 * probe:.2f} ms: "
          f"{100 * share:.2f}% of training time at one probe per {SNAPSHOT_EVERY} steps", flush=True)
    plain, probed = [], []
    for _ in range(repeats):  # interleaved, so drift in machine load hits both sides
        plain.append(throughput(steps, False))
        probed.append(throughput(steps, True))
        print(f"  run: {plain[-1]:.1f} steps/s without, {probed[-1]:.1f} with", flush=True)
    a, b = statistics.median(plain), statistics.median(probed)
    print(f"{steps} steps x {repeats}: without the probe {a:.1f} steps/s, with it {b:.1f}; "
          f"share of training throughput: {100 * (1 - b / a):.1f}%")


if __name__ == "__main__":
    main()
