"""Saving never replaces another run's checkpoint without asking: the training screen's w and
saving on quitting, for a fresh run beside an earlier session's checkpoint, a reopened
checkpoint (its own file: saved over quietly) and a branch (the file holds the run it left).
Driven headless with Pilot at 80x24; each test trains a few steps, waited for, never timed.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from conftest import screen_text

from scenarios import load_scenario
from tui_tfs.app import TfsApp
from tui_tfs.leaving import save_paths
from tui_tfs.checkpoints import checkpoint_info
from tui_tfs.screens.training import TrainingScreen
from tui_tfs.training import RUNNING, SNAPSHOT_EVERY, TrainingController

pytestmark = pytest.mark.timeout(180)
CHECKPOINT = Path("checkpoints") / "reverse.safetensors"
BESIDE = Path("checkpoints") / "reverse-2.safetensors"


async def until(pilot, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await pilot.pause(0.05)


async def press(pilot, *keys):
    for key in keys:
        await pilot.press(key)
        await pilot.pause()


def run(app, body):
    async def main():
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await body(pilot)
    asyncio.run(main())


def run_steps(c: TrainingController, n: int) -> None:
    c.total_steps = c.step + n
    assert c.start()
    while c.state == RUNNING:
        c.run_for(5.0)


def earlier_session(steps: int = 7) -> bytes:
    """What an earlier session left: a reverse run of `steps` steps in the default file."""
    scenario = load_scenario("reverse")
    c = TrainingController(scenario, scenario.build_model(), eval_every=0)
    run_steps(c, steps)
    c.save()
    return CHECKPOINT.read_bytes()


async def train_in_app(pilot, app, steps: int) -> TrainingController:
    """Ctrl+T, then train `steps` steps (the run ends there); the controller the screen drives."""
    await press(pilot, "ctrl+t")
    assert isinstance(app.screen, TrainingScreen)
    c = app.screen.controller
    c.total_steps = c.step + steps
    await press(pilot, "space")
    await until(pilot, lambda: c.state not in (RUNNING, "ready"))
    return c


def asked(app) -> str | None:
    """The question on screen (a ChoiceScreen's title and choices, as drawn), None when none
    is."""
    if type(app.screen).__name__ != "ChoiceScreen":
        return None
    title = str(app.screen.query_one(".dialog-title").render())
    return "\n".join([title, screen_text(app)])


async def ask_by_w(pilot, app) -> str:
    """w pressed: wait for the question and return its text."""
    await press(pilot, "w")
    await until(pilot, lambda: asked(app) is not None)
    await pilot.pause(0.2)  # drawn
    return asked(app)


def test_w_on_a_fresh_run_asks_and_saves_beside_an_earlier_sessions_checkpoint(tmp_path,
                                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = earlier_session(steps=7)
    app = TfsApp("reverse", None, ascii=False)
    seen = {}

    async def body(pilot):
        c = await train_in_app(pilot, app, 3)
        seen["question"] = await ask_by_w(pilot, app)
        await press(pilot, "escape")  # cancel: nothing written
        seen["after_cancel"] = (CHECKPOINT.read_bytes(), BESIDE.exists(), asked(app))
        await ask_by_w(pilot, app)
        await press(pilot, "enter")  # the first choice: beside it
        await until(pilot, lambda: BESIDE.exists())
        seen["first_save"] = (CHECKPOINT.read_bytes(), checkpoint_info(BESIDE).step)
        c.total_steps = c.step + 2
        await press(pilot, "space")
        await until(pilot, lambda: c.state not in (RUNNING, "ready"))
        await press(pilot, "w")  # its own file now: no question
        await until(pilot, lambda: checkpoint_info(BESIDE).step == c.step)
        await pilot.pause(0.2)
        seen["second_save"] = (asked(app), checkpoint_info(BESIDE).step, c.step)

    run(app, body)
    question = seen["question"]
    assert question is not None
    assert "checkpoints/reverse.safetensors exists" in question
    assert "another run of reverse (step 7" in question and "step 3 of this run" in question
    assert "Beside it, as checkpoints/reverse-2.safetensors" in question
    assert seen["after_cancel"] == (before, False, None)
    assert seen["first_save"] == (before, 3)
    assert seen["second_save"] == (None, 5, 5)
    assert CHECKPOINT.read_bytes() == before  # the earlier session's run was never touched


def test_w_over_it_replaces_the_file_only_when_chosen(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    earlier_session(steps=7)
    app = TfsApp("reverse", None, ascii=False)

    async def body(pilot):
        await train_in_app(pilot, app, 2)
        await ask_by_w(pilot, app)
        await press(pilot, "down", "enter")  # the second choice: over it
        await until(pilot, lambda: checkpoint_info(CHECKPOINT).step == 2)
        assert asked(app) is None

    run(app, body)
    assert checkpoint_info(CHECKPOINT).step == 2 and not BESIDE.exists()


def test_quitting_saves_a_fresh_run_beside_an_earlier_sessions_checkpoint(tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = earlier_session(steps=7)
    app = TfsApp("reverse", None, ascii=False)
    seen = {}

    async def body(pilot):
        await train_in_app(pilot, app, 4)
        await press(pilot, "q")
        await until(pilot, lambda: type(app.screen).__name__ == "QuitScreen")
        await pilot.pause(0.2)
        seen["dialog"] = screen_text(app)
        await press(pilot, "s")

    run(app, body)
    assert "s saves it to checkpoints/reverse-2.safetensors" in seen["dialog"]
    assert CHECKPOINT.read_bytes() == before and checkpoint_info(BESIDE).step == 4


def test_a_reopened_checkpoint_saves_over_its_own_file_without_a_question(tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    earlier_session(steps=7)
    app = TfsApp(None, str(CHECKPOINT), ascii=False)
    seen = {}

    async def body(pilot):
        c = await train_in_app(pilot, app, 3)
        await press(pilot, "w")
        await until(pilot, lambda: checkpoint_info(CHECKPOINT).step == 10)
        await pilot.pause(0.2)
        seen["asked"], seen["step"] = asked(app), c.step

    run(app, body)
    assert seen == {"asked": None, "step": 10}
    assert checkpoint_info(CHECKPOINT).step == 10 and not BESIDE.exists()


def test_a_branch_asks_before_saving_over_the_run_it_left(tmp_path, monkeypatch):
    """Saved at step 2N, branched from step N: the file holds the run the branch left."""
    monkeypatch.chdir(tmp_path)
    scenario = load_scenario("reverse")
    c = TrainingController(scenario, scenario.build_model(), eval_every=0)
    run_steps(c, 2 * SNAPSHOT_EVERY)
    c.save()
    assert c.replaces(CHECKPOINT) is None and not c.unsaved
    c.branch(c.snapshots.at(SNAPSHOT_EVERY), lr=1e-3)
    why = c.replaces(CHECKPOINT)
    assert why == f"it holds run, the run the branch left, at step {2 * SNAPSHOT_EVERY}"
    assert save_paths([c]) == [BESIDE]
    run_steps(c, SNAPSHOT_EVERY)  # back at step 2N, on other weights: still not saved
    assert c.step == 2 * SNAPSHOT_EVERY and c.unsaved
    c.keep("live")
    assert c.unsaved and save_paths([c]) == [BESIDE]
    assert c.save(CHECKPOINT) == BESIDE  # not asked to replace it: a new file beside
    c.save(CHECKPOINT, replace=True)  # chosen over it: the branch's file now
    assert c.replaces(CHECKPOINT) is None and not c.unsaved


def test_saving_the_branch_over_the_file_leaves_the_other_run_unsaved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scenario = load_scenario("reverse")
    c = TrainingController(scenario, scenario.build_model(), eval_every=0)
    run_steps(c, 2 * SNAPSHOT_EVERY)
    c.save()
    c.branch(c.snapshots.at(SNAPSHOT_EVERY))
    c.save(CHECKPOINT, replace=True)
    assert c.other.file is None and c.other.unsaved  # its only copy is in memory now
    c.keep("other")
    assert c.unsaved and c.replaces(CHECKPOINT) is not None


def test_leaving_unasked_saves_the_run_first_and_quit_without_saving_does_not(tmp_path,
                                                                            monkeypatch):
    """A closed browser tab, a hung-up terminal and SIGTERM all reach the app as Textual's
    ExitApp, without q's question: the run is saved first, beside another run's file."""
    from textual import messages

    monkeypatch.chdir(tmp_path)
    before = earlier_session(steps=7)
    app = TfsApp("reverse", None, ascii=False)

    async def closed_unasked(pilot):
        c = await train_in_app(pilot, app, 4)
        c.total_steps = 10_000
        await press(pilot, "space")  # training when the tab closes
        await until(pilot, lambda: c.step >= 6)
        app.post_message(messages.ExitApp())
        await pilot.pause(0.5)

    run(app, closed_unasked)
    step = checkpoint_info(BESIDE).step
    assert step >= 6 and CHECKPOINT.read_bytes() == before
    assert app.saved_on_leaving == [f"tui-tfs: the app was closed; saved reverse at step "
                                    f"{step} to checkpoints/reverse-2.safetensors"]

    BESIDE.unlink()
    app = TfsApp("reverse", None, ascii=False)

    async def quit_without_saving(pilot):
        await train_in_app(pilot, app, 3)
        await press(pilot, "q")
        await until(pilot, lambda: type(app.screen).__name__ == "QuitScreen")
        await press(pilot, "n")

    run(app, quit_without_saving)
    assert not BESIDE.exists() and app.saved_on_leaving == []


def test_quitting_saves_the_run_a_branch_left_beside_the_branch(tmp_path, monkeypatch):
    """Trained to 2N unsaved, branched from N: s saves the branch and, beside it, the run it
    left (before, that run was dropped without a word)."""
    from tui_tfs.leaving import pending_saves, save_all

    monkeypatch.chdir(tmp_path)
    scenario = load_scenario("reverse")
    c = TrainingController(scenario, scenario.build_model(), eval_every=0)
    run_steps(c, 2 * SNAPSHOT_EVERY)
    c.branch(c.snapshots.at(SNAPSHOT_EVERY), lr=1e-3)
    run_steps(c, 3)

    class Named:
        name = "reverse"

    pending = pending_saves([(Named(), c)])
    assert [p.question_line() for p in pending] == [
        f"  reverse: step {SNAPSHOT_EVERY + 3}\n    s saves it to {CHECKPOINT}",
        f"  reverse, the run the branch left (run): step {2 * SNAPSHOT_EVERY}\n"
        f"    s saves it to {BESIDE}"]
    said, failed = save_all(pending)
    assert failed == [] and len(said) == 2
    assert checkpoint_info(CHECKPOINT).step == SNAPSHOT_EVERY + 3
    assert checkpoint_info(BESIDE).step == 2 * SNAPSHOT_EVERY
    assert not c.other.unsaved and pending_saves([(Named(), c)]) == []


def test_two_saves_at_once_never_share_a_name(tmp_path, monkeypatch):
    """Tabs of one server leave together: each claims its file (O_EXCL), so the second of two
    runs that both chose checkpoints/reverse.safetensors writes reverse-2 instead."""
    from tui_tfs.checkpoints import claim_new_file

    monkeypatch.chdir(tmp_path)
    assert claim_new_file(CHECKPOINT) == CHECKPOINT and CHECKPOINT.stat().st_size == 0
    assert claim_new_file(CHECKPOINT) == BESIDE
    CHECKPOINT.unlink(), BESIDE.unlink()
    scenario = load_scenario("reverse")
    first, second = (TrainingController(scenario, scenario.build_model(), eval_every=0)
                     for _ in range(2))
    run_steps(first, 2), run_steps(second, 3)
    assert first.replaces(CHECKPOINT) is None and second.replaces(CHECKPOINT) is None
    assert first.save() == CHECKPOINT  # both were told the path was free ...
    assert second.save() == BESIDE  # ... the second finds it taken and goes beside
    assert checkpoint_info(CHECKPOINT).step == 2 and checkpoint_info(BESIDE).step == 3


def test_a_file_written_by_another_run_since_this_one_opened_it_is_not_its_own(tmp_path,
                                                                              monkeypatch):
    """Two sessions opened the same checkpoint (two tabs): after one saves, the other's w asks
    and its quit saves beside, instead of replacing the first one's steps."""
    from tui_tfs.session import Session

    monkeypatch.chdir(tmp_path)
    earlier_session(steps=7)
    one, two = Session.from_checkpoint(str(CHECKPOINT)), Session.from_checkpoint(str(CHECKPOINT))
    run_steps(one.training, 2)
    run_steps(two.training, 4)
    assert one.training.replaces(CHECKPOINT) is None
    one.training.save()
    why = two.training.replaces(CHECKPOINT)
    assert why == "it was written since this run opened it, by another run (step 9, exact 0.0%)"
    assert save_paths([two.training]) == [BESIDE]
    assert two.training.save(CHECKPOINT) == BESIDE and checkpoint_info(CHECKPOINT).step == 9
