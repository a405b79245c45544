"""A model the student trains in a lesson's explorer is never lost without a question: going
back to the step's place (R) or to the lesson screen (Esc) keeps the run with the app, says
so, and quitting asks where to save it. Pilot at 80x24; a few steps, waited for, never timed.
"""
from __future__ import annotations

import asyncio
import time

import pytest
from conftest import screen_text
from test_lesson_screen import lesson_app, until_ready

from tui_tfs.checkpoints import checkpoint_info
from tui_tfs.lessons_screen import LessonScreen
from tui_tfs.screens.training import TrainingScreen
from tui_tfs.training import RUNNING

pytestmark = pytest.mark.timeout(180)


async def until(pilot, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await pilot.pause(0.05)


async def press(pilot, *keys):
    for key in keys:
        await pilot.press(key)
        await pilot.pause()


@pytest.mark.parametrize("leave", ["R", "escape"])
def test_a_model_trained_in_a_lesson_is_kept_and_quitting_asks(tmp_path, monkeypatch, leave):
    monkeypatch.chdir(tmp_path)
    app = lesson_app(tmp_path)
    seen = {}

    async def main():
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await until_ready(app, pilot)
            await press(pilot, "g", "ctrl+t")
            assert isinstance(app.screen, TrainingScreen)
            c = app.screen.controller
            c.total_steps = 5
            await press(pilot, "space")
            await until(pilot, lambda: c.state not in (RUNNING, "ready"))
            await press(pilot, "escape", leave)  # the explorer, then away from this model
            seen["left_to"] = type(app.screen)
            seen["notes"] = [str(n.message) for n in app._notifications]
            await press(pilot, "q")
            await until(pilot, lambda: type(app.screen).__name__ == "QuitScreen")
            await pilot.pause(0.2)
            seen["question"] = screen_text(app)
            await press(pilot, "s")

    asyncio.run(main())
    if leave == "escape":
        assert seen["left_to"] is LessonScreen
    assert any("the model trained here (step 5, not saved) is kept: quitting asks" in n
               for n in seen["notes"]), seen["notes"]
    assert "This training is not saved" in seen["question"] and "step 5" in seen["question"]
    assert checkpoint_info(tmp_path / "checkpoints" / "reverse.safetensors").step == 5
