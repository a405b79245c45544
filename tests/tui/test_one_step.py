"""One step at a time: `n` on the training screen trains exactly one step and opens the explorer
on its trace, forward, loss, backward and then the optimizer's update."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import screen_text
from test_training_screen import open_training, run, until

from engine.maths.recorder import BACKWARD, FORWARD, UPDATE
from engine.trace.formulas import explain
from tui_tfs.screens.explorer import ExplorerScreen
from tui_tfs.screens.training import TrainingScreen
from tui_tfs.training import PAUSED, TrainingController

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("ascii", [False, True])
def test_n_trains_one_step_and_opens_its_trace_with_the_update(make_app, ascii):
    app = make_app("reverse", ascii=ascii)

    async def body(pilot):
        c = await open_training(pilot, app)
        assert "n 1 step" in screen_text(app)  # the key is in the footer
        twin = TrainingController(c.scenario, _copy(c.model))  # the same step, untraced
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ExplorerScreen))
        assert c.step == 1 and c.state == PAUSED
        stats = twin.trainer.step()
        assert c.history[-1].loss == stats.loss
        assert np.array_equal(c.model.packed.data, twin.model.packed.data)  # bit for bit
        s = app.screen.session
        phases = [e.phase for e in s.trace.events]
        first = phases.index(UPDATE)
        assert set(phases[:first]) == {FORWARD, BACKWARD} and set(phases[first:]) == {UPDATE}
        for event in s.trace.events[first:]:
            param = next(p for p in c.model.params() if p.name == event.path)
            assert np.array_equal(event.tensors["w_after"], param.data)  # the live weights
            mine = next(p for p in s.model.params() if p.name == event.path)
            assert np.array_equal(event.tensors["w_before"], mine.data)  # the explorer's
        await pilot.press("U")  # run to the update
        await pilot.pause()
        assert s.event.phase == UPDATE
        text = screen_text(app)
        assert "update (" in text  # the tree's third branch, with its count of events
        assert explain(s.event).title in text  # the formula panel: "Adam update", ...
        assert f"{'=>' if ascii else '⇒'} update" in text  # the status line: its own glyph
        await pilot.press("ctrl+t")  # back to the run, which goes on from the updated weights
        await pilot.pause()
        assert isinstance(app.screen, TrainingScreen)
        assert "step 1 trained alone and traced" in screen_text(app)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ExplorerScreen) and c.step == 2)
        twin.trainer.step()
        assert np.array_equal(c.model.packed.data, twin.model.packed.data)

    run(app, body)


def test_n_while_running_pauses_first_then_steps_once(make_app):
    app = make_app("reverse")

    async def body(pilot):
        c = await open_training(pilot, app)
        await pilot.press("space")
        await until(pilot, lambda: c.step >= 3)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ExplorerScreen))
        assert c.state == PAUSED
        trace = app.screen.session.trace
        assert trace.first_update is not None
        assert f"training step {c.step}" in app.screen.session.source

    run(app, body)


def _copy(model):
    from engine.maths.models import build_model

    twin = build_model(model.config)
    twin.packed.data[...] = model.packed.data
    return twin
