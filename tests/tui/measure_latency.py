"""Keypress-to-idle latency of the explorer on the default scenario (reverse), 80x24, headless.

Not a test (speed lives in measurements, not in timed unit tests): run it by hand,

    python tests/tui/measure_latency.py

It prints two numbers per view: the CPU cost of one step as a frame (the action, our
renderers, Textual's layout and a full render of the screen), and the Pilot time from a key
press until the app is idle again (median and p90 over 20 presses), beside Pilot's own floor
(an unbound key), which is waiting, not drawing.
"""
from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tui_tfs.app import TfsApp  # noqa: E402


async def measure(keys: list[str], repeats: int = 20, view: str | None = None) -> dict[str, list[float]]:
    app = TfsApp("reverse", None, ascii=False)
    times: dict[str, list[float]] = {}
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        if view:
            await pilot.press(view)
            await pilot.pause()
        for key in keys:
            for _ in range(repeats):
                start = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                times.setdefault(key, []).append((time.perf_counter() - start) * 1000)
    return times


async def redraw_cost(view: str | None, repeats: int = 20) -> list[float]:
    """ms of CPU for one step: the action, our renderers, Textual's layout and a full
    compositor render of the screen (what a frame costs, without Pilot's idle waits)."""
    app = TfsApp("reverse", None, ascii=False)
    out = []
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        if view:
            await pilot.press(view)
            await pilot.pause()
        screen = app.screen
        for _ in range(repeats):
            start = time.perf_counter()
            screen.action_step("next")
            screen._refresh_layout(screen.size)
            screen._compositor.render_update(full=True)
            out.append((time.perf_counter() - start) * 1000)
            await pilot.pause()
    return sorted(out)


def main() -> None:
    for view in (None, "a", "A", "d"):
        costs = asyncio.run(redraw_cost(view))
        print(f"view {view or 't'}: step + layout + full frame render: median "
              f"{statistics.median(costs):.1f} ms, max {costs[-1]:.1f} ms")
    base = asyncio.run(measure(["z"]))["z"]
    print(f"Pilot floor (an unbound key): median {statistics.median(base):.1f} ms")
    for view, keys in ((None, ["n", "p", "o", "i", "u"]), ("a", ["n", "h", "s"]),
                       ("A", ["n"]), ("d", ["n"])):
        results = asyncio.run(measure(keys, view=view))
        for key, values in results.items():
            values.sort()
            print(f"view {view or 't'} key {key}: median {statistics.median(values):.1f} ms, "
                  f"p90 {values[int(0.9 * len(values)) - 1]:.1f} ms, max {values[-1]:.1f} ms")


if __name__ == "__main__":
    main()
