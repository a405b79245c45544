"""How much the training screen costs: steps/s of the engine's Trainer.run alone vs the same
steps trained from the app's training screen (headless Textual at 80x24, plot and panels
redrawn at ~2 Hz), on the reversal scenario. Not a test: run it and read the numbers.

    python tests/tui/measure_training_overhead.py [STEPS] [REPEATS]

Both sides skip held-out evaluation (eval_every=0), so the difference is the UI alone:
plotting, panels, messages and Textual's compositor competing with the training thread
(the app's snapshots included: it takes them at its default interval and budget).

A third pair isolates the snapshots: the app's training controller with no UI, snapshots at
the default interval (SNAPSHOT_EVERY, SNAPSHOT_BUDGET) against none at all, interleaved.
"""
from __future__ import annotations

import asyncio
import statistics
import sys
import time

from engine.training.trainer import Trainer
from scenarios import load_scenario
from tui_tfs.app import TfsApp
from engine.training.snapshots import Snapshots
from tui_tfs.training import RUNNING, SNAPSHOT_BUDGET, SNAPSHOT_EVERY, TrainingController


def headless(steps: int) -> float:
    scenario = load_scenario("reverse")
    trainer = Trainer(scenario.build_model(), scenario.train_config, scenario.next_batch)
    trainer.run(3)  # warm up
    start = time.perf_counter()
    trainer.run(steps)
    return steps / (time.perf_counter() - start)


def controller(steps: int, snapshots: bool) -> float:
    """steps/s of the app's training controller alone, with or without its snapshots."""
    scenario = load_scenario("reverse")
    c = TrainingController(scenario, scenario.build_model(), eval_every=0)
    if not snapshots:
        c.snapshots = Snapshots(2**62, SNAPSHOT_BUDGET)  # never due
    c.total_steps = 3
    c.start()
    while c.state == RUNNING:  # warm up
        c.run_for(5.0)
    c.total_steps = 3 + steps
    c.start()
    start = time.perf_counter()
    while c.state == RUNNING:
        c.run_for(5.0)
    return steps / (time.perf_counter() - start)


def in_app(steps: int) -> tuple[float, int, float]:
    """(steps/s, redraws, share of the time spent taking snapshots) training `steps` steps
    from the training screen."""
    result = {}

    async def main():
        app = TfsApp("reverse", None, ascii=False, color=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            s = app.session
            c = s.training = TrainingController(s.scenario, s.model, eval_every=0)
            await pilot.press("ctrl+t")
            await pilot.pause()
            screen = app.screen
            redraws = [0]
            original = screen.refresh_all

            def counting(evaluated: bool = True) -> None:
                redraws[0] += 1
                original(evaluated)

            screen.refresh_all = counting
            taking = [0.0]  # seconds spent taking snapshots, on the training thread
            take = c.snapshots.take

            def timed_take(*args, **kwargs):
                began = time.perf_counter()
                try:
                    return take(*args, **kwargs)
                finally:
                    taking[0] += time.perf_counter() - began

            c.snapshots.take = timed_take
            c.total_steps = 3
            await pilot.press("space")  # warm up, like the headless side
            while c.state == RUNNING:
                await pilot.pause(0.25)
            c.total_steps = 3 + steps
            start = time.perf_counter()
            await pilot.press("space")
            while c.step < 3 + steps:
                await pilot.pause(0.25)
            elapsed = time.perf_counter() - start
            result["rate"] = steps / elapsed
            result["snapshots"] = taking[0] / elapsed
            result["redraws"] = redraws[0]
            await pilot.press("q")

    asyncio.run(main())
    return result["rate"], result["redraws"], result["snapshots"]


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    alone, app, draws, with_snaps, without, shares = [], [], [], [], [], []
    for _ in range(repeats):  # interleaved, so drift in machine load hits both sides
        alone.append(headless(steps))
        rate, redraws, share = in_app(steps)
        app.append(rate)
        shares.append(share)
        draws.append(redraws)
        without.append(controller(steps, snapshots=False))
        with_snaps.append(controller(steps, snapshots=True))
    a, b = statistics.median(alone), statistics.median(app)
    print(f"reverse, {steps} steps x {repeats}: headless Trainer.run {a:.1f} steps/s "
          f"(runs {', '.join(f'{x:.1f}' for x in alone)})")
    print(f"in-app training screen {b:.1f} steps/s (runs {', '.join(f'{x:.1f}' for x in app)}), "
          f"~{statistics.median(draws)} redraws per run")
    print(f"overhead of the app: {100 * (1 - b / a):.1f}% of training throughput")
    n, y = statistics.median(without), statistics.median(with_snaps)
    print(f"controller without snapshots {n:.1f} steps/s (runs "
          f"{', '.join(f'{x:.1f}' for x in without)}); with a snapshot every {SNAPSHOT_EVERY} "
          f"steps within {SNAPSHOT_BUDGET // 2**20} MiB {y:.1f} (runs "
          f"{', '.join(f'{x:.1f}' for x in with_snaps)})")
    print(f"overhead of the snapshots: {100 * (1 - y / n):.1f}% of training throughput; in the "
          f"app, taking them was {100 * statistics.median(shares):.2f}% of the training time "
          f"(runs {', '.join(f'{100 * x:.2f}%' for x in shares)})")


if __name__ == "__main__":
    main()
