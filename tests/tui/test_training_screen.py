"""The training screen, driven headless with Pilot at 80x24: start, watch the plot and the
numbers move, pause, inspect in the explorer, resume, generate, save, divergence, quitting.

Each test trains a few dozen steps at most: step counts are waited for, never timed.
"""
from __future__ import annotations

import asyncio
import re
import threading
import time

import numpy as np
import pytest
from conftest import screen_text

from tui_tfs.screens.explorer import ExplorerScreen
from tui_tfs.screens.training import TrainingScreen
from tui_tfs.training import DIVERGED, PAUSED, RUNNING, TrainingController

pytestmark = pytest.mark.timeout(180)
ascii_quote = ascii  # the builtin: the tests below use `ascii` for a parameter


async def until(pilot, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await pilot.pause(0.05)


async def open_training(pilot, app, eval_every: int = 10, total: int = 20000) -> TrainingController:
    """ctrl+t from the explorer, with a controller that evaluates often and stops early."""
    s = app.session
    s.training = TrainingController(s.scenario, s.model, eval_every=eval_every)
    s.training.total_steps = total
    await pilot.press("ctrl+t")
    await pilot.pause()
    assert isinstance(app.screen, TrainingScreen)
    return s.training


def run(app, body, size=(80, 24), notifications=False):
    async def main():
        async with app.run_test(size=size, notifications=notifications) as pilot:
            await pilot.pause()
            await body(pilot)
    asyncio.run(main())


def test_start_plot_metrics_pause_resume(make_app):
    app = make_app("reverse")

    async def body(pilot):
        c = await open_training(pilot, app)
        text = screen_text(app)
        assert "space starts training" in text and "ready" in text and "0 / 20000" in text
        await pilot.press("space")
        await until(pilot, lambda: c.step >= 25 and c.evaluation is not None)
        await pilot.pause(0.4)  # one redraw
        text = screen_text(app)
        assert "RUNNING" in text and re.search(r"exact +\d+% @\d+", text), text
        assert "┤" in text and "└" in text  # the plot's axes
        assert any("\u2800" <= ch <= "\u28ff" for ch in text)  # the loss curve
        await pilot.press("space")
        await until(pilot, lambda: c.state == PAUSED)
        await pilot.pause(0.1)
        paused_at = c.step
        text = screen_text(app)
        assert "PAUSED" in text and re.search(rf"step +{paused_at} / 20000", text)
        assert re.search(r"#  input +target +model", text), text
        await pilot.pause(0.3)
        assert c.step == paused_at  # paused means paused
        await pilot.press("space")
        await until(pilot, lambda: c.step > paused_at + 3)
        assert c.state == RUNNING
        await pilot.press("2")
        await pilot.pause(0.4)
        assert "decoder.blocks.0" in screen_text(app)  # per-layer gradient norms
        await pilot.press("space")
        await until(pilot, lambda: c.state == PAUSED)

    run(app, body)


def test_inspect_opens_the_explorer_on_the_live_model_and_returns(make_app):
    app = make_app("reverse")

    async def body(pilot):
        c = await open_training(pilot, app)
        await pilot.press("space")
        await until(pilot, lambda: c.step >= 5)
        await pilot.press("i")  # pauses first, then opens
        await until(pilot, lambda: isinstance(app.screen, ExplorerScreen))
        assert c.state == PAUSED
        explorer = app.screen
        assert explorer.session.model is c.model  # the live weights, not a copy
        assert f"training batch of step {c.step}" in explorer.session.source
        batch = explorer.session.trace.batch.tgt_in
        np.testing.assert_array_equal(batch, c.last_batch.tgt_in)  # the current batch
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("ctrl+t")  # back to the training screen below, not a new one
        await pilot.pause()
        assert isinstance(app.screen, TrainingScreen) and app.screen.controller is c
        step = c.step
        await pilot.press("space")
        await until(pilot, lambda: c.step > step + 3)
        await pilot.press("space")
        await until(pilot, lambda: c.state == PAUSED)

    run(app, body)


def test_generate_and_save(make_app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app("reverse")

    async def body(pilot):
        c = await open_training(pilot, app)
        await pilot.press("space")
        await until(pilot, lambda: c.step >= 5)
        await pilot.press("g")
        await pilot.pause()
        await pilot.press("enter")  # the scenario's first example
        await pilot.pause(0.3)
        text = screen_text(app)
        assert f"'{app.session.scenario.examples[0]}' ->" in text
        assert "tok" in text and "alt1" in text and "temperature 1.00" in text
        await pilot.press("k")  # top-k 1: greedy
        await pilot.pause(0.3)
        assert "top-k 1" in screen_text(app)
        assert all(p == 1.0 for p in app.screen.generated.probs)
        await pilot.press("w")
        await pilot.pause(0.3)
        saved = tmp_path / "checkpoints" / "reverse.safetensors"
        assert saved.exists() and c.saved is not None
        await pilot.press("space")
        await until(pilot, lambda: c.state == PAUSED)

    run(app, body)


def test_lr_keys_and_break_switch_between_steps(make_app):
    app = make_app("reverse")

    async def body(pilot):
        c = await open_training(pilot, app)
        lr = c.config.lr
        await pilot.press("plus")
        assert c.config.lr == pytest.approx(2 * lr)
        await pilot.press("minus", "minus")
        assert c.config.lr == pytest.approx(lr / 2)
        await pilot.press("space")
        await until(pilot, lambda: c.step >= 3)
        await pilot.press("B")
        await pilot.pause()
        await pilot.press("enter")  # the first switch: no_causal_mask
        await pilot.pause()
        assert c.model.config.breaks.no_causal_mask
        step = c.step
        await until(pilot, lambda: c.step > step + 2)  # it trains on, broken
        await pilot.press("space")
        await until(pilot, lambda: c.state == PAUSED)
        assert "no_causal_mask" in screen_text(app)
        await pilot.press("escape")  # back to the explorer: it now shows the trained model
        await pilot.pause()
        assert isinstance(app.screen, ExplorerScreen) and app.session.model is c.model

    run(app, body)


def test_divergence_pauses_says_so_and_opens_the_first_bad_event(make_app):
    app = make_app("reverse")

    async def body(pilot):
        c = await open_training(pilot, app)
        await pilot.press("L")
        await pilot.pause()
        app.screen.query_one("#prompt").value = "1e30"
        await pilot.press("enter")
        await pilot.pause()
        assert c.config.lr == 1e30
        await pilot.press("space")
        await until(pilot, lambda: c.state == DIVERGED)
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "Training diverged at step" in text and "weights of step 1 kept" in text
        assert all(np.isfinite(v).all() for v in c.model.state_dict().values())
        await pilot.press("enter")  # "Open the explorer at the first bad event"
        await until(pilot, lambda: isinstance(app.screen, ExplorerScreen))
        event = app.screen.session.event
        assert any(t.dtype.kind == "f" and not np.isfinite(t).all() for t in event.tensors.values())
        earlier = app.screen.session.trace.events[:event.index]
        assert all(np.isfinite(t).all() for e in earlier for t in e.tensors.values()
                   if t.dtype.kind == "f")

    run(app, body)


def test_quit_while_training_does_not_hang(make_app):
    app = make_app("reverse")

    async def body(pilot):
        c = await open_training(pilot, app, total=100_000)
        await pilot.press("space")
        await until(pilot, lambda: c.step >= 3)
        await pilot.press("q")  # training runs: the app asks first
        await pilot.pause()
        await pilot.press("n")  # quit without saving

    start = time.monotonic()
    run(app, body)
    assert time.monotonic() - start < 60
    assert app.session.training.state in (PAUSED, RUNNING)


def test_quit_does_not_wait_for_the_step_in_flight(make_app):
    """Quitting mid-step returns at once, and the training thread takes no step after it.

    A larger model's step or a held-out evaluation can take seconds. Here the fourth step is
    held until the test lets it go (at most `hold` seconds): the app can only return before
    that if quitting does not wait for the step. Then, let go, the thread ends after that one
    step. The verdict needs no clock; the bound on the quit's time is generous (it takes
    ~0.2 s here, and waited out the whole hold before)."""
    hold = 20.0
    app = make_app("reverse")
    held, let_go, finished = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    async def body(pilot):
        c = await open_training(pilot, app, eval_every=0, total=100_000)
        step = c.trainer.step

        def held_step():
            if c.step != 3:
                return step()
            seen["thread"] = threading.current_thread()
            held.set()
            let_go.wait(hold)
            try:
                return step()
            finally:
                finished.set()

        c.trainer.step = held_step
        await pilot.press("space")
        await until(pilot, held.is_set)
        await pilot.press("q")  # training runs: the app asks first
        await pilot.pause()
        seen["quit"] = time.monotonic()
        await pilot.press("n")  # quit without saving

    run(app, body)
    quit_took = time.monotonic() - seen["quit"]
    still_stepping = not finished.is_set()
    let_go.set()
    seen["thread"].join(30)
    c = app.session.training
    assert still_stepping, f"quitting waited for the step in flight ({quit_took:.1f} s)"
    assert quit_took < 5.0, f"quit took {quit_took:.2f} s"
    assert seen["thread"].daemon and not seen["thread"].is_alive()
    # after the held step the stop request is seen: no fifth step (the state is PAUSED if the
    # step ended before run_for's half second was up, else the thread just ends)
    assert c.step == 4 and c.state in (PAUSED, RUNNING), "a step was taken after quitting"


def test_ascii_mode_reads_and_help_lists_the_training_keys(make_app):
    app = make_app("reverse", ascii=True, color=False)

    async def body(pilot):
        c = await open_training(pilot, app, eval_every=5, total=8)
        await pilot.press("space")
        await until(pilot, lambda: c.state not in (RUNNING, "ready"))
        await pilot.pause(0.3)
        text = screen_text(app)
        assert text.isascii(), text
        assert "FINISHED" in text and "8 / 8" in text
        for key in ("L", "B"):  # a line to type (Input) and a list to choose from (OptionList)
            await pilot.press(key)
            await pilot.pause()
            text = screen_text(app)
            assert text.isascii(), [c for c in text if not c.isascii()][:10]
            await pilot.press("escape")
            await pilot.pause()
        for severity in ("information", "warning", "error"):  # toasts: "i" says "pausing"
            app.notify(f"a {severity} note", severity=severity)
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "a warning note" in text and text.isascii(), [c for c in text if not c.isascii()][:10]
        app.clear_notifications()
        await pilot.press("question_mark")
        await pilot.pause()
        text = screen_text(app)
        assert "Start, pause or resume training" in text and "Space" in text

    run(app, body, notifications=True)


def test_picker_t_opens_training(make_app):
    app = make_app(None)

    async def body(pilot):
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, TrainingScreen)
        assert app.screen.session.scenario.name == "reverse"

    run(app, body)


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_top_k_1_lists_no_alternatives_and_the_sample_reads_whole(make_app, ascii):
    """With top-k 1 the panel once offered `<pad> 0.00 <s> 0.00` as alternatives, and a long
    sample ran off the panel's edge; in ASCII mode it showed char-lm's space as ␣."""
    app = make_app("char-lm", ascii=ascii, color=not ascii)

    async def body(pilot):
        await open_training(pilot, app)
        await pilot.press("g")
        await pilot.pause()
        app.screen.query_one("#prompt").value = "It was the best of times, it was the worst of times"
        await pilot.press("enter")
        await pilot.pause(0.3)
        if ascii:
            assert screen_text(app).isascii(), screen_text(app)
        await pilot.press("k")  # top-k 1
        await pilot.pause(0.3)
        text = screen_text(app)
        generated = app.screen.generated
        assert "top-k 1" in text and " 0.00" not in text and "alt1" not in text, text
        bar = "|" if ascii else "│"
        rows = [line[line.find(bar) + 1:line.rfind(bar)].rstrip(" ▁▂▃▄▅▆▇█").strip()
                for line in text.splitlines()]
        start = next(i for i, row in enumerate(rows) if row.startswith("'It was"))
        end = next(i for i, row in enumerate(rows) if row.startswith("tok "))
        assert end - start >= 2, text  # the sample needed more than one line: it is wrapped
        shown = re.sub(r"\s", "", "".join(rows[start:end]))
        quote = ascii_quote if ascii else repr
        assert shown == re.sub(r"\s", "", f"{quote(generated.prompt)} -> {quote(generated.text)}"), text

    run(app, body)


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_help_lists_only_the_training_keys_and_the_footer_shows_it(make_app, ascii):
    """The training screen's help once mixed in the explorer's keys, which mean other things
    there (i, p, g, k, s), and its footer had no room for `?`."""
    from textual.widgets import Static

    from tui_tfs.screens.help import HelpScreen, key_name

    app = make_app("reverse", ascii=ascii, color=not ascii)

    async def body(pilot):
        await open_training(pilot, app)
        footer = screen_text(app).splitlines()[-1]
        assert "? Help" in footer, footer
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        help_text = app.screen.query_one("#help-body", Static).content.plain
        keys = [line.split()[0] for line in help_text.splitlines()
                if line.startswith("  ") and line.strip()]
        expected = [key_name(b.key) for b in TrainingScreen.BINDINGS if b.description]
        assert len(keys) == len(set(keys)), keys  # no key listed twice
        assert sorted(keys) == sorted(expected + ["Ctrl+P"]), keys
        explorer_only = {b.tooltip or b.description for b in ExplorerScreen.BINDINGS
                         if b.description} - {b.tooltip or b.description
                                              for b in TrainingScreen.BINDINGS}
        assert not [d for d in explorer_only if d in help_text], help_text

    run(app, body)
