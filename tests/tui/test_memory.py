"""Memory stays flat: an inspector's trace (90 MB on char-lm) is freed when the inspector
closes, ten inspects take no more than one, and a replaced trace is freed at once.

The cycle collector is off while a screen opens and closes and the trace is looked for, so
the trace is shown to be freed by the app itself, not whenever Python runs the collector. RSS
(the process's resident size, /proc/self/status, what `ps` shows) is read after a collection:
the closed screens' widgets refer to each other and are the collector's to free, in its time.
"""
from __future__ import annotations

import asyncio
import gc
import sys
import time
import weakref

import pytest

from tui_tfs.screens.explorer import ExplorerScreen
from tui_tfs.screens.training import TrainingScreen

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="reads the resident size from /proc")]

TRACE_MB = 90  # one char-lm training batch's trace (32 x 64 tokens)
FLAT_MB = 16  # ten inspects may take this much more than one (Textual's bounded caches)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def footer_keys() -> int:
    from textual.widgets._footer import FooterKey

    return sum(isinstance(o, FooterKey) for o in gc.get_objects())


async def until(pilot, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await pilot.pause(0.05)


def run(app, body):
    async def main():
        async with app.run_test(size=(80, 24), notifications=False) as pilot:
            await pilot.pause()
            try:
                await body(pilot)
            finally:
                gc.enable()
    asyncio.run(main())


def test_ten_inspects_free_each_trace_and_memory_stays_flat(make_app):
    app = make_app("char-lm")
    sizes: list[float] = []
    keys: list[int] = []

    async def body(pilot):
        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, TrainingScreen))
        c = app.session.training
        await pilot.press("space")  # a few steps, so the inspector shows a real training batch
        await until(pilot, lambda: c.step >= 3)
        await pilot.press("space")
        await until(pilot, lambda: not c.running)
        await pilot.pause(0.2)
        before = rss_mb()
        for n in range(10):
            gc.disable()
            await pilot.press("i")
            await until(pilot, lambda: isinstance(app.screen, ExplorerScreen))
            await pilot.press("n", "a")  # look around: the views cut maps from the trace
            await pilot.pause()
            inspected = app.screen.session.trace
            assert inspected.batch.tgt_in.shape[0] == c.scenario.train_config.batch_size
            trace = weakref.ref(inspected)
            del inspected
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, TrainingScreen))
            await pilot.pause(0.1)
            assert trace() is None, f"inspect {n + 1}: the closed inspector's trace is alive"
            gc.enable()
            gc.collect()
            sizes.append(rss_mb())
            keys.append(footer_keys())
        assert sizes[0] - before < TRACE_MB / 2, (
            f"{before:.0f} MB before, {sizes[0]:.0f} MB after one inspect: its trace's memory "
            f"was not given back")

    run(app, body)
    print(f"RSS after inspects 1..10: {[round(s) for s in sizes]} MB")
    assert max(sizes) - sizes[0] < FLAT_MB, f"RSS grew over ten inspects: {sizes}"
    assert keys[-1] <= keys[0], f"footer keys pile up on the training screen: {keys}"


def test_replaced_trace_is_freed_at_once(make_app):
    app = make_app("reverse")

    async def body(pilot):
        gc.disable()
        await pilot.press("z", "A")  # one shade scale across the overview: cached per trace
        await pilot.pause()
        await pilot.press("escape")  # back to the tensor view: the overview draws no more
        await pilot.pause()
        assert isinstance(app.screen, ExplorerScreen)
        old = weakref.ref(app.session.trace)
        for key in ("r", "N"):  # a new random batch, the next example
            await pilot.press(key)
            await pilot.pause()
            assert app.session.trace is not old()
            assert old() is None, f"{key}: the replaced trace is alive"
            old = weakref.ref(app.session.trace)

    run(app, body)
