"""No key loses work: sessions survive the picker, quitting with unsaved training asks first,
and checkpoints open in the explorer and train on from their step. Driven headless with Pilot.

Each test trains a few dozen steps at most; step counts are waited for, never timed.
"""
from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import safetensors
import safetensors.numpy
from conftest import screen_text

from engine.training.checkpoint import load_checkpoint, load_model
from tui_tfs.app import TfsApp
from tui_tfs.cli import main as cli_main
from scenarios.checkpoints import open_checkpoint, save, scenario_of
from tui_tfs.headless import RunOptions, prepare
from tui_tfs.screens import ExplorerScreen, PickerScreen, PromptScreen
from tui_tfs.screens.training import TrainingScreen
from tui_tfs.session import Session
from tui_tfs.training import RUNNING, TrainingController

pytestmark = pytest.mark.timeout(180)


async def until(pilot, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await pilot.pause(0.05)


def run(app, body, size=(80, 24), notifications=False):
    async def main():
        async with app.run_test(size=size, notifications=notifications) as pilot:
            await pilot.pause()
            await body(pilot)
    asyncio.run(main())


async def press(pilot, *keys):
    for key in keys:
        await pilot.press(key)
        await pilot.pause()


async def train(pilot, app, steps: int, eval_every: int = 0) -> TrainingController:
    """Ctrl+T from the explorer, train `steps` steps (the run ends there), wait for the end."""
    s = app.session
    s.training = TrainingController(s.scenario, s.model, eval_every=eval_every)
    s.training.total_steps = steps
    await press(pilot, "ctrl+t", "space")
    await until(pilot, lambda: s.training.state not in (RUNNING, "ready"))
    return s.training


def asking(app) -> bool:
    """The quit question is on screen."""
    return type(app.screen).__name__ == "QuitScreen"


def weights(model) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in model.state_dict().items()}


def test_trained_weights_cursor_and_input_survive_the_picker():
    """tiny-lm: train, Esc to the picker, reopen: the same weights, loss, place and input."""
    app = TfsApp(None, None, ascii=False)
    seen = {}

    async def body(pilot):
        await press(pilot, "down", "down", "down", "down", "enter")  # tiny-lm
        assert app.session.scenario.name == "tiny-lm"
        seen["untrained"] = app.session.trace.loss
        c = await train(pilot, app, 30)
        await press(pilot, "escape")  # back to the explorer, on the trained weights
        await press(pilot, "I")
        app.screen.query_one("Input").value = "the cat sat on the"
        await press(pilot, "enter", "n", "n", "n", "a")
        session = app.session
        seen["trained"] = session.trace.loss
        seen["weights"] = weights(session.model)
        seen["place"] = (session.cursor.index, session.source)
        await press(pilot, "escape")
        assert isinstance(app.screen, PickerScreen)
        seen["picker"] = screen_text(app)
        await press(pilot, "enter")  # the picker stands on tiny-lm, the entry just left
        assert isinstance(app.screen, ExplorerScreen)
        assert app.session is session and app.screen.session is session
        seen["reopened"] = app.session.trace.loss
        seen["reopened_weights"] = weights(app.session.model)
        seen["reopened_place"] = (app.session.cursor.index, app.session.source)
        seen["view"] = app.screen.view_name
        await press(pilot, "ctrl+t")
        seen["controller"] = (app.screen.controller is c, c.step)
        await press(pilot, "escape")
        await press(pilot, "q", "n")  # trained, not saved: asked, then quit without saving

    run(app, body)
    assert seen["trained"] != pytest.approx(seen["untrained"], abs=1e-3)
    assert seen["reopened"] == seen["trained"]
    for name, array in seen["weights"].items():
        np.testing.assert_array_equal(seen["reopened_weights"][name], array)
    assert seen["reopened_place"] == seen["place"] and seen["view"] == "attention"
    assert seen["place"][0] == 3 and "the cat sat on the" in seen["place"][1]
    assert "step 30, not saved" in seen["picker"], seen["picker"]
    assert seen["controller"] == (True, 30)
    assert app.return_code == 0


def test_q_while_training_asks_cancel_keeps_running_save_writes_a_checkpoint(tmp_path,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = TfsApp("reverse", None, ascii=False)
    seen = {}

    async def body(pilot):
        s = app.session
        s.training = c = TrainingController(s.scenario, s.model, eval_every=5)
        c.total_steps = 100_000
        await press(pilot, "ctrl+t", "space")
        await until(pilot, lambda: c.step >= 3)
        await press(pilot, "q")
        assert asking(app)
        seen["dialog"] = screen_text(app)
        await press(pilot, "escape")  # cancel
        assert isinstance(app.screen, TrainingScreen) and app.return_code is None
        step = c.step
        await until(pilot, lambda: c.step > step + 3)  # still training
        assert c.state == RUNNING
        await press(pilot, "q", "s")  # save and quit
        seen["step"] = c.step
        seen["weights"] = weights(c.model)

    run(app, body)
    assert "Quit tui-tfs?" in seen["dialog"] and "reverse: step" in seen["dialog"]
    assert "Save and quit" in seen["dialog"] and "Quit without saving" in seen["dialog"]
    assert app.return_code == 0
    saved = tmp_path / "checkpoints" / "reverse.safetensors"
    checkpoint = load_checkpoint(saved)
    assert checkpoint.step == seen["step"]
    for name, array in seen["weights"].items():
        np.testing.assert_array_equal(checkpoint.state_dict[name], array)
    reopened = Session.open(str(saved))  # loadable: it opens, ready to train on
    assert reopened.training.step == seen["step"]


def test_ctrl_c_asks_the_same_question_and_quits_at_once_when_nothing_is_lost(tmp_path,
                                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = TfsApp("reverse", None, ascii=True, color=False)
    seen = {}

    async def body(pilot):
        await train(pilot, app, 5)
        await press(pilot, "escape")  # the explorer: Ctrl+C is the app's there too
        await press(pilot, "ctrl+c")
        assert asking(app)
        seen["dialog"] = screen_text(app)
        await press(pilot, "ctrl+c")  # asked already: the question stays
        assert asking(app) and app.return_code is None
        await press(pilot, "c")  # cancel
        assert isinstance(app.screen, ExplorerScreen)
        quit_command = next(c for c in app.get_system_commands(app.screen) if c.title == "Quit")
        await quit_command.callback()  # the palette's Quit
        await pilot.pause()
        assert asking(app)
        await press(pilot, "escape")
        assert isinstance(app.screen, ExplorerScreen)
        await press(pilot, "I", "ctrl+c")  # from a dialog (an input) too
        assert asking(app)
        await press(pilot, "n")

    run(app, body)
    assert seen["dialog"].isascii() and "Quit tui-tfs?" in seen["dialog"]
    assert app.return_code == 0 and not (tmp_path / "checkpoints").exists()

    untouched = TfsApp("reverse", None, ascii=False)
    run(untouched, lambda pilot: press(pilot, "ctrl+c"))
    assert untouched.return_code == 0  # nothing trained: no question


def test_the_quit_question_reads_whole_at_80x23(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = TfsApp("reverse", None, ascii=True, color=False)
    seen = {}

    async def body(pilot):
        await train(pilot, app, 5)
        await pilot.resize_terminal(80, 23)
        await pilot.pause()
        await press(pilot, "q")
        seen["text"] = screen_text(app)
        await press(pilot, "n")

    run(app, body)
    text = seen["text"]
    assert len(text.splitlines()) == 23 and text.isascii()
    for line in ("Quit tui-tfs? This training is not saved:", "reverse: step 5",
                 "s saves it to checkpoints/reverse.safetensors",
                 "s  Save and quit",
                 "n  Quit without saving: the training is lost",
                 "c  Cancel: keep working (Esc)"):
        assert line in text, text


def test_the_palette_does_not_promise_copy_on_ctrl_c():
    app = TfsApp("reverse", None, ascii=False)
    seen = {}

    async def body(pilot):
        for screen in (app.screen, None):
            if screen is None:
                await press(pilot, "I")  # a dialog with an input
            commands = list(app.get_system_commands(app.screen))
            seen.setdefault("titles", []).extend(c.title for c in commands)
            seen.setdefault("helps", []).extend(c.help for c in commands)

    run(app, body)
    assert "Copy selected text" not in seen["titles"]
    assert not any("Ctrl+C" in h and "Quit" not in t
                   for t, h in zip(seen["titles"], seen["helps"]))
    quit_help = seen["helps"][seen["titles"].index("Quit")]
    assert "Ctrl+C" in quit_help and "asks first" in quit_help


# -- checkpoints ----------------------------------------------------------------------------------
def trained_checkpoint(directory, steps: int = 30, total: int = 60):
    """Train reverse `steps` of a `total`-step run headless and save it the way `tui-tfs
    train` does; returns (path, scenario, the live trainer) to compare with the file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "reverse.safetensors"
    scenario, trainer, _ = prepare("reverse", RunOptions(out=path, steps=total))
    for _ in range(steps):
        trainer.step()
    save(scenario, trainer, path)
    return path, scenario, trainer


def test_explore_a_checkpoint_traces_the_trained_model_and_ctrl_t_resumes_its_run(tmp_path):
    path, scenario, trainer = trained_checkpoint(tmp_path)
    live = Session(scenario, trainer.model, trainer.loss_fn)  # the trained model, not the file
    untrained = Session.open("reverse")
    moments = {k: v.copy() for k, v in trainer.optimizer.state_dict().items()}
    next_loss = trainer.step().loss  # what the run's step 31 gives, from the same state
    app = TfsApp(None, str(path), ascii=False)
    seen = {}

    async def body(pilot):
        assert isinstance(app.screen, ExplorerScreen)
        seen["loss"] = app.session.trace.loss
        await press(pilot, "ctrl+t")
        assert isinstance(app.screen, TrainingScreen)
        c = app.screen.controller
        seen["step"] = c.step
        seen["text"] = screen_text(app)
        seen["moments"] = {k: v.copy() for k, v in c.trainer.optimizer.state_dict().items()}
        await press(pilot, "space")
        await until(pilot, lambda: c.step >= 31)
        await press(pilot, "space")
        await until(pilot, lambda: not c.running)
        seen["first"] = c.history[0]
        await press(pilot, "q", "n")

    run(app, body)
    assert seen["loss"] == live.trace.loss != untrained.trace.loss
    assert seen["step"] == 30 and "resumes training at step 30" in seen["text"]
    assert set(seen["moments"]) == set(moments)
    for key, array in moments.items():
        np.testing.assert_array_equal(seen["moments"][key], array)
    assert seen["first"].step == 31 and seen["first"].loss == next_loss  # bit for bit


def test_picker_lists_checkpoints_and_opens_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli_main(["train", "reverse", "--steps", "12", "--eval-every", "6"]) == 0
    path = tmp_path / "checkpoints" / "reverse.safetensors"
    metrics = scenario_of(open_checkpoint(path)).evaluate(load_model(path))
    (tmp_path / "checkpoints" / "notes.safetensors").write_bytes(b"not a checkpoint")
    app = TfsApp(None, None, ascii=False)
    seen = {}

    async def body(pilot):
        seen["picker"] = screen_text(app)
        await press(pilot, *["down"] * 6)  # past the six scenarios and the heading
        seen["card"] = screen_text(app)
        await press(pilot, "enter")
        seen["screen"], seen["session"] = app.screen, app.session
        c = app.session.training  # `train --steps 12` ran to its end: Ctrl+T goes on past it
        seen["opened_at"] = c.step
        await press(pilot, "ctrl+t")
        seen["notice"] = screen_text(app)
        await press(pilot, "space")
        await until(pilot, lambda: c.step >= 14)
        await press(pilot, "space")
        await until(pilot, lambda: not c.running)
        seen["trained_to"] = c.step
        await press(pilot, "escape", "escape", "o")
        assert isinstance(app.screen, PromptScreen)
        app.screen.query_one("Input").value = str(path)
        await press(pilot, "enter")  # o with the same path: the same session
        seen["again"] = app.session
        await press(pilot, "escape", "q", "n")

    run(app, body)
    assert "saved in checkpoints/" in seen["picker"]
    assert "reverse.safetensors" in seen["picker"] and "notes" not in seen["picker"]
    exact = f"exact {metrics['exact_match']:.1%}"
    assert f"step 12, {exact}" in seen["picker"], seen["picker"]
    assert "a checkpoint of reverse" in seen["card"] and "step     12" in seen["card"]
    assert isinstance(seen["screen"], ExplorerScreen)
    assert seen["session"].checkpoint.resolve() == path and seen["opened_at"] == 12
    assert seen["trained_to"] >= 14
    assert seen["again"] is seen["session"]
    assert "space resumes training at step 12 (its run was complete; now to step 24)" in \
        seen["notice"], seen["notice"]


def test_non_finite_weights_open_with_a_warning_and_bad_files_name_the_fix(tmp_path,
                                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)  # short relative paths: the notices name them on one line
    path, _, _ = trained_checkpoint(tmp_path, steps=2)
    with safetensors.safe_open(str(path), framework="np") as handle:  # a NaN written in: the
        metadata = handle.metadata()  # engine refuses to save one, a diverged file may hold it
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    tensors["encoder.tok_emb.weight"][0, 0] = np.nan
    safetensors.numpy.save_file(tensors, str(path), metadata=metadata)
    other = tmp_path / "picture.png"
    other.write_bytes(b"\x89PNG\r\n\x1a\n\xe8\x00binary")
    app = TfsApp(None, path.name, ascii=False)
    seen = {}

    async def body(pilot):
        await pilot.pause(0.2)
        seen["explorer"] = (app.screen, screen_text(app))
        await press(pilot, "escape", "o")
        app.screen.query_one("Input").value = other.name
        await press(pilot, "enter")
        await pilot.pause(0.2)
        seen["bad"] = screen_text(app)

    run(app, body, size=(100, 30), notifications=True)
    screen, text = seen["explorer"]
    assert isinstance(screen, ExplorerScreen), text
    assert "reverse.safetensors: 1 of" in text and "NaN or Inf" in text, text
    assert "picture.png: neither a" in seen["bad"], seen["bad"]
    assert "utf-8" not in seen["bad"]


def test_saving_two_runs_that_share_a_file_on_quit_overwrites_neither(tmp_path, monkeypatch):
    """The built-in reverse and the reopened checkpoints/reverse.safetensors both save to
    that file by default: save-and-quit saves the reopened run back to its own file and the
    fresh run beside it (the file holds a run the fresh one did not write), and says so."""
    monkeypatch.chdir(tmp_path)
    path, _, _ = trained_checkpoint(tmp_path / "checkpoints", steps=2)
    app = TfsApp("reverse", None, ascii=False)
    seen = {}

    async def body(pilot):
        await train(pilot, app, 3)
        await press(pilot, "escape", "escape", "o")
        app.screen.query_one("Input").value = "checkpoints/reverse.safetensors"
        await press(pilot, "enter")
        assert app.session.checkpoint is not None
        c = app.session.training
        c.total_steps = 4
        await press(pilot, "ctrl+t", "space")
        await until(pilot, lambda: not c.running)
        await press(pilot, "q")
        seen["dialog"] = screen_text(app)
        await press(pilot, "s")

    run(app, body)
    lines = seen["dialog"].splitlines()

    def row(needle: str) -> int:
        return next(i for i, line in enumerate(lines) if needle in line)

    assert row("s saves it to checkpoints/reverse-2.safetensors") == row("reverse: step 3") + 1
    assert (row("s saves it to checkpoints/reverse.safetensors")
            == row("reverse.safetensors: step 4") + 1), seen["dialog"]
    assert load_checkpoint(path).step == 4  # the reopened run, back in its own file
    assert load_checkpoint(tmp_path / "checkpoints" / "reverse-2.safetensors").step == 3
    assert app.return_code == 0
