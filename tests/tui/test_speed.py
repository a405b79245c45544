"""The speed control of running training: `[` and `]` set a cap on steps a second, shown beside
the loss plot; the controller keeps to it. Pacing is checked on a fake clock (what the
controller waits for, and when each step starts), never by timing."""
from __future__ import annotations

import pytest
from conftest import screen_text
from test_training_screen import open_training, run, until

from scenarios import load_scenario
from engine.maths.models import build_model
from tui_tfs.training import PACE_SLICE, PAUSED, SPEEDS, TrainingController

pytestmark = pytest.mark.timeout(180)


class FakeClock:
    """A clock that only `sleep` moves: steps take no time on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep = None  # called after each sleep (to make a request mid-wait)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep()


def paced(controller: TrainingController) -> tuple[FakeClock, list[float]]:
    """Give `controller` a fake clock; returns it and the list of the steps' start times."""
    clock = FakeClock()
    controller.clock, controller.sleep = clock, clock.sleep
    starts: list[float] = []
    step = controller.trainer.step

    def timed_step():
        starts.append(clock())
        return step()

    controller.trainer.step = timed_step
    return clock, starts


@pytest.fixture(scope="module")
def scenario():
    return load_scenario("reverse")


def controller_for(scenario, total=1000) -> TrainingController:
    c = TrainingController(scenario, build_model(scenario.model_config), eval_every=0)
    c.total_steps = total
    return c


def test_one_step_a_second_takes_one_step_a_second_of_the_clock(scenario):
    c = controller_for(scenario)
    clock, starts = paced(c)
    c.set_speed(1)
    c.start()
    c.run_for(10.0)
    assert 10 <= len(starts) <= 11  # steps at 0, 1, ..., 10 at most, in a 10 s window
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 1.0 - 1e-9
    assert max(clock.sleeps) <= PACE_SLICE  # short waits: a pause is seen at once
    c.set_speed(5)  # faster, mid-run
    before = len(starts)
    c.run_for(2.0)
    gaps = [b - a for a, b in zip(starts[before:], starts[before + 1:])]
    assert 9 <= len(starts) - before <= 11 and min(gaps) >= 0.2 - 1e-9


def test_no_cap_never_waits_and_a_pause_ends_a_wait(scenario):
    c = controller_for(scenario, total=4)
    clock, starts = paced(c)
    c.start()
    c.run_for(1.0)  # the fake clock never moves: only the run's end stops it
    assert len(starts) == 4 and clock.sleeps == []
    c = controller_for(scenario)
    clock, starts = paced(c)
    c.set_speed(1)
    c.start()
    clock.on_sleep = lambda: c.request("pause") if len(clock.sleeps) == 3 else None
    c.run_for(30.0)
    assert len(starts) == 1 and c.state == PAUSED  # paused while waiting: no second step
    assert len(clock.sleeps) == 3


def test_speed_steps_through_the_ladder_and_stops_at_its_ends(scenario):
    c = controller_for(scenario)
    assert c.speed_label == "max"
    labels = [c.change_speed(-1) for _ in range(len(SPEEDS) + 1)]
    assert labels[0] == "50 steps/s" and labels[-2:] == ["1 step/s", "1 step/s"]
    assert [c.change_speed(1) for _ in range(len(SPEEDS))][-1] == "max"
    with pytest.raises(ValueError, match="speed must be one of"):
        c.set_speed(3)


def test_brackets_set_the_speed_shown_on_screen_and_the_run_keeps_to_it(make_app):
    app = make_app("reverse")

    async def body(pilot):
        c = await open_training(pilot, app)
        assert "ready  max speed" in screen_text(app)
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert c.steps_per_second == 50 and "ready  50 steps/s" in screen_text(app)
        for _ in range(len(SPEEDS)):
            await pilot.press("left_square_bracket")
        await pilot.pause()
        assert "ready  1 step/s" in screen_text(app)
        clock, starts = paced(c)
        await pilot.press("space")
        await until(pilot, lambda: len(starts) >= 4)
        await pilot.press("space")
        await until(pilot, lambda: c.state == PAUSED)
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        assert min(gaps) >= 1.0 - 1e-9  # one step a second of the controller's clock
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert "PAUSED  2 steps/s" in screen_text(app)

    run(app, body, size=(80, 23))
