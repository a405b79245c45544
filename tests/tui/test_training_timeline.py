"""The timeline under the loss plot, driven with Pilot: marks for the snapshots on the step
axis, the picked one drawn apart with its step and loss; o explores the model as it was then,
w saves it (a path asked, never overwriting unasked), b branches and K keeps one run."""
from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest
from conftest import screen_text

from engine.training.checkpoint import load_checkpoint
from textual.widgets import Input

from tui_tfs.screens.branch_dialog import BranchScreen
from tui_tfs.screens.dialogs import ChoiceScreen, PromptScreen
from tui_tfs.screens.explorer import ExplorerScreen
from tui_tfs.screens.training import TrainingScreen
from tui_tfs.training import RUNNING, SNAPSHOT_EVERY, TrainingController
from tui_tfs.widgets.loss_plot import LossPlot
from tui_tfs.widgets.timeline import MARK, SELECTED

pytestmark = pytest.mark.timeout(240)
STEPS = 4 * SNAPSHOT_EVERY


def trained(app, steps: int = STEPS) -> TrainingController:
    """The session's controller after `steps` steps, trained before the screen opens."""
    s = app.session
    c = s.training = TrainingController(s.scenario, s.model, eval_every=0)
    c.total_steps = steps
    c.start()
    while c.state == RUNNING:
        c.run_for(5.0)
    c.total_steps = 20000
    return c


def run(app, body, size=(80, 24)):
    """The app at `size`, trained STEPS steps, on the training screen: body(pilot, controller)."""
    async def main():
        async with app.run_test(size=size, notifications=False) as pilot:
            await pilot.pause()
            c = trained(app)
            await pilot.press("ctrl+t")
            await pilot.pause()
            assert isinstance(app.screen, TrainingScreen)
            await body(pilot, c)
    asyncio.run(main())


def plot_lines(app) -> list[str]:
    return app.screen.query_one(LossPlot).text.splitlines()


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
@pytest.mark.parametrize("size", [(80, 24), (80, 23)], ids=["80x24", "80x23"])
def test_arrows_pick_snapshots_on_the_step_axis_and_the_border_says_which(make_app, ascii,
                                                                           size):
    app = make_app("reverse", ascii=ascii)
    steps = list(range(0, STEPS + 1, SNAPSHOT_EVERY))
    mark, picked = MARK[ascii], SELECTED[ascii]

    async def body(pilot, c):
        assert c.snapshots.steps == steps
        lines = plot_lines(app)
        timeline = next(line for line in lines if line.count(mark) >= len(steps) - 1)
        assert picked not in timeline
        assert f"{len(steps)} snapshots" in screen_text(app)
        await pilot.press("left")  # the latest
        text = screen_text(app)
        loss = c.snapshots.kept[-1].loss
        assert f"{len(steps)}/{len(steps)}: step {STEPS}, loss {loss:.4g}" in text
        await pilot.press("left", "left")
        text = screen_text(app)
        assert f"{len(steps) - 2}/{len(steps)}: step {STEPS - 2 * SNAPSHOT_EVERY}," in text
        row = next(line for line in plot_lines(app) if picked in line)
        assert row.count(picked) == 1 and row.count(mark) == len(steps) - 1
        # the pick sits under the step axis' tick for its step: the axis labels say where
        axis = plot_lines(app)[plot_lines(app).index(row) - 1]
        ticks = {int(t): axis.index(t) for t in axis.split() if t.isdigit()}
        first_col = ticks[1]
        last_col = max(ticks.values())
        step = STEPS - 2 * SNAPSHOT_EVERY
        expected = first_col + round((step - 1) / (STEPS - 1) * (last_col + len(str(STEPS)) - 1
                                                                  - first_col))
        assert abs(row.index(picked) - expected) <= 1, (row, axis)
        await pilot.press("home")
        assert f"1/{len(steps)}: step 0, before training" in screen_text(app)
        await pilot.press("end", "right")  # past the latest: back to now
        assert f"{len(steps)} snapshots" in screen_text(app)
        assert not any(picked in line for line in plot_lines(app))
        await pilot.press("left", "escape")  # escape lets go of a pick first
        assert isinstance(app.screen, TrainingScreen)
        assert f"{len(steps)} snapshots" in screen_text(app)
        if ascii:
            assert all(ord(ch) < 128 for ch in "".join(plot_lines(app)))

    run(app, body, size)


def test_o_explores_the_model_as_it_was_then(make_app):
    app = make_app("reverse")

    async def body(pilot, c):
        live_loss = app.session.trace.loss
        await pilot.press("home", "right")  # step SNAPSHOT_EVERY
        await pilot.press("o")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ExplorerScreen)
        snapshot = c.snapshots.at(SNAPSHOT_EVERY)
        assert np.array_equal(screen.session.model.packed.data, snapshot.weights)
        assert screen.session.model is not c.model
        assert screen.session.trace.loss != live_loss
        assert f"weights of step {SNAPSHOT_EVERY}" in screen.session.source
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TrainingScreen)

    run(app, body)


def test_w_saves_the_picked_snapshot_and_asks_before_overwriting(make_app, tmp_path,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app("reverse")

    async def body(pilot, c):
        await pilot.press("home", "right", "right")  # step 2 * SNAPSHOT_EVERY
        await pilot.press("w")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        await pilot.press("enter")  # the offered path
        await pilot.pause(0.3)
        path = tmp_path / "checkpoints" / f"reverse-step{2 * SNAPSHOT_EVERY}.safetensors"
        checkpoint = load_checkpoint(path)
        snapshot = c.snapshots.at(2 * SNAPSHOT_EVERY)
        assert checkpoint.step == 2 * SNAPSHOT_EVERY
        weights = snapshot.model().state_dict()
        assert all(np.array_equal(checkpoint.state_dict[k], v) for k, v in weights.items())
        assert not np.array_equal(checkpoint.state_dict["encoder.tok_emb.weight"]
                                  if "encoder.tok_emb.weight" in weights else
                                  next(iter(checkpoint.state_dict.values())),
                                  c.model.state_dict()["encoder.tok_emb.weight"]
                                  if "encoder.tok_emb.weight" in weights else
                                  next(iter(c.model.state_dict().values())))
        stamp = os.stat(path).st_mtime_ns
        await pilot.press("left", "w")  # another snapshot onto the same file: asked first
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        app.screen.query_one(Input).value = str(path.relative_to(tmp_path))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        assert "exists" in screen_text(app)
        await pilot.press("enter")  # the first choice: cancel
        await pilot.pause(0.3)
        assert os.stat(path).st_mtime_ns == stamp
        assert c.step == STEPS  # the run itself is untouched

    run(app, body)


def test_b_branches_both_curves_are_drawn_and_k_keeps_one_after_asking(make_app):
    app = make_app("reverse")

    async def body(pilot, c):
        first = [s.loss for s in c.history]
        await pilot.press("home", "right")  # step SNAPSHOT_EVERY
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, BranchScreen)
        lr = c.config.lr * 4
        field = app.screen.query_one("#branch-lr")
        field.value = f"{lr:g}"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TrainingScreen)
        assert c.other is not None and c.step == SNAPSHOT_EVERY
        c.total_steps = STEPS
        await pilot.press("space")
        for _ in range(1200):
            if c.state != RUNNING:
                break
            await pilot.pause(0.05)
        assert c.step == STEPS
        await pilot.pause(0.3)
        text = screen_text(app)
        legend = f"lr {float(f'{lr:g}'):.3g} @{SNAPSHOT_EVERY}"
        assert legend in text and f"x same" not in text and "x run" in text
        plot = "\n".join(plot_lines(app))
        assert plot.count("x") >= 5  # the other run's points, drawn in their own marker
        assert [s.loss for s in c.other.history] == first
        await pilot.press("K")
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("down", "enter")  # keep the other run...
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen) and c.other is not None  # ...asked again
        await pilot.press("enter")  # cancel: both kept
        await pilot.pause()
        assert c.other is not None and c.step == STEPS
        await pilot.press("K")
        await pilot.pause()
        await pilot.press("down", "enter")
        await pilot.pause()
        await pilot.press("down", "enter")  # discard the branch
        await pilot.pause()
        assert c.other is None and [s.loss for s in c.history] == first
        assert app.session.model is c.model
        assert "x run" not in screen_text(app)

    run(app, body)
