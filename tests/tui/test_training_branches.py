"""Snapshots while training in the app, and branches from them: the same snapshot and settings
give the same losses bit for bit, a changed learning rate parts from the first step after it,
and either run can be kept."""
from __future__ import annotations

import numpy as np
import pytest

from scenarios import load_scenario
from tui_tfs.training import PAUSED, RUNNING, SNAPSHOT_EVERY, TrainingController

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def reverse():
    return load_scenario("reverse")


def run_steps(c: TrainingController, n: int) -> None:
    c.total_steps = c.step + n
    assert c.start()
    while c.state == RUNNING:
        c.run_for(5.0)


def losses(c: TrainingController, after: int) -> list[float]:
    return [s.loss for s in c.history if s.step > after]


def test_the_app_snapshots_every_n_steps_within_its_budget_spread_over_the_run():
    scenario = load_scenario("tiny-lm")
    c = TrainingController(scenario, scenario.build_model(), eval_every=0)
    assert c.snapshots.steps == [0]
    one = c.snapshots.kept[0].nbytes
    c.snapshots.budget_bytes = 12 * one  # a small budget, so a few hundred steps overflow it
    most = 0
    for _ in range(40):
        run_steps(c, SNAPSHOT_EVERY)
        most = max(most, c.snapshots.nbytes)
    assert c.step == 40 * SNAPSHOT_EVERY
    assert most <= c.snapshots.budget_bytes
    steps = c.snapshots.steps
    assert steps[0] == 0 and steps[-1] == c.step and 6 <= len(steps) <= 12, steps
    gaps = np.diff(steps)
    assert len(set(gaps.tolist())) == 1 and gaps[0] > SNAPSHOT_EVERY, steps  # evenly spread
    by_step = {s.step: s.loss for s in c.history}
    assert all(s.loss == by_step[s.step] for s in c.snapshots.kept[1:])


def test_a_pause_takes_a_snapshot_where_the_run_stands(reverse):
    c = TrainingController(reverse, reverse.build_model(), eval_every=0)
    c.total_steps = 100
    assert c.start()
    c.run_for(0.0)  # one step, then the window ends
    c.request("pause")
    c.run_for(1.0)
    assert c.state == PAUSED and c.snapshots.steps == [0, c.step]


def test_same_snapshot_same_settings_same_losses_and_a_new_lr_parts_at_once(reverse):
    c = TrainingController(reverse, reverse.build_model(), eval_every=0)
    run_steps(c, 3 * SNAPSHOT_EVERY)
    first = losses(c, 0)
    first_weights = c.model.packed.data.copy()
    at = c.snapshots.at(SNAPSHOT_EVERY)
    assert c.branch(at) == f"same @{SNAPSHOT_EVERY}"
    assert c.other is not None and c.step == SNAPSHOT_EVERY and c.unsaved
    with pytest.raises(ValueError, match="keep one first"):
        c.branch(at)
    run_steps(c, 2 * SNAPSHOT_EVERY)
    assert [s.loss for s in c.history] == first  # bit for bit, shared prefix included
    assert np.array_equal(c.model.packed.data, first_weights)
    c.keep("live")
    assert c.other is None

    lr = c.config.lr * 4
    c.branch(c.snapshots.at(SNAPSHOT_EVERY), lr=lr)
    before = c.model.packed.data.copy()
    run_steps(c, 1)
    after_one = c.model.packed.data.copy()
    run_steps(c, 2 * SNAPSHOT_EVERY - 1)
    changed = losses(c, SNAPSHOT_EVERY)
    assert changed[0] == first[SNAPSHOT_EVERY]  # the loss of the first step: before its update
    assert all(a != b for a, b in zip(changed[1:], first[SNAPSHOT_EVERY + 1:]))
    # the first update already differs from the one the run took at that step
    c2 = TrainingController(reverse, reverse.build_model(), eval_every=0)
    run_steps(c2, SNAPSHOT_EVERY + 1)
    assert np.array_equal(before, c.other.snapshots.at(SNAPSHOT_EVERY).weights)
    assert not np.array_equal(after_one, c2.model.packed.data)
    assert c.label == f"lr {lr:.3g} @{SNAPSHOT_EVERY}" and c.other.label == f"same @{SNAPSHOT_EVERY}"
    assert [m.kind for m in c.markers] == ["branch"]


def test_keep_the_other_run_goes_back_to_where_it_stood(reverse):
    c = TrainingController(reverse, reverse.build_model(), eval_every=0)
    run_steps(c, 2 * SNAPSHOT_EVERY)
    first = losses(c, 0)
    weights = c.model.packed.data.copy()
    c.branch(c.snapshots.at(SNAPSHOT_EVERY), seed=7)
    run_steps(c, 3)
    assert losses(c, SNAPSHOT_EVERY)[0] != first[SNAPSHOT_EVERY]  # other batches
    c.keep("other")
    assert c.other is None and c.label == "run" and c.step == 2 * SNAPSHOT_EVERY
    assert [s.loss for s in c.history] == first
    assert np.array_equal(c.model.packed.data, weights)
    run_steps(c, 2)  # and it trains on as if it had never left
    again = TrainingController(reverse, reverse.build_model(), eval_every=0)
    run_steps(again, 2 * SNAPSHOT_EVERY + 2)
    assert [s.loss for s in c.history] == [s.loss for s in again.history]


def test_a_branch_flips_a_switch_and_says_what_is_wrong(reverse):
    c = TrainingController(reverse, reverse.build_model(), eval_every=0)
    run_steps(c, SNAPSHOT_EVERY)
    with pytest.raises(ValueError, match="no break-it switch 'nope'"):
        c.branch(c.snapshots.at(0), switch="nope")
    name = "no_residual" if hasattr(c.model.config.breaks, "no_residual") else None
    name = name or next(iter(c.model.config.breaks.__dataclass_fields__))
    c.branch(c.snapshots.at(0), switch=name)
    assert getattr(c.model.config.breaks, name) and c.label == f"{name} on @0"
    assert not getattr(c.other.end.model_config.breaks, name)


def test_a_model_too_large_for_the_budget_trains_without_snapshots(reverse, monkeypatch):
    import tui_tfs.training as training

    model = reverse.build_model()
    monkeypatch.setattr(training, "SNAPSHOT_BUDGET", 4 * 3 * model.packed.data.nbytes - 1)
    c = TrainingController(reverse, model, eval_every=0)
    assert c.snapshots.kept == []
    run_steps(c, SNAPSHOT_EVERY + 1)
    c.snapshot_now()
    assert c.step == SNAPSHOT_EVERY + 1 and c.snapshots.kept == []
