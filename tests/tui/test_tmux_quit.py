"""The real command in a real terminal: `tui-tfs --ascii` in tmux at 80x24 trains a few
steps, then Ctrl+C and q ask before anything is lost; cancel keeps training; save writes the
checkpoint and the shell is told where. Runs in a temporary directory (the checkpoint lands
in its ./checkpoints/). The app's stderr is left alone: Textual draws the screen there.
"""
from __future__ import annotations

import re
import shlex
import shutil
import time

import pytest
from test_tmux import Tmux

from engine.training.checkpoint import load_checkpoint

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(shutil.which("tmux") is None or shutil.which("tui-tfs") is None,
                                 reason="needs tmux and the installed tui-tfs command")]


def _step(screen: str) -> int:
    match = re.search(r"step\s+(\d+) / \d+", screen)
    assert match, screen
    return int(match.group(1))


def test_quitting_with_unsaved_training_asks_and_save_writes_the_checkpoint(tmp_path):
    tmux = Tmux()
    try:
        tmux.start(f"cd {shlex.quote(str(tmp_path))} && {shlex.quote(shutil.which('tui-tfs'))} "
                   f"--ascii")
        tmux.wait_for("pick a scenario")
        tmux.keys("Enter")  # reverse
        tmux.wait_for("forward 1/")
        tmux.keys("C-t")
        tmux.wait_for("space starts training")
        tmux.keys("Space")
        tmux.wait_for("RUNNING")
        tmux.keys("C-c")
        screen = tmux.wait_for("Quit tui-tfs?")
        assert screen.isascii(), screen
        assert "training now" in screen, screen
        assert "s saves it to checkpoints/reverse.safetensors" in screen, screen
        assert "s  Save and quit" in screen, screen
        assert "n  Quit without saving" in screen and "c  Cancel" in screen, screen
        tmux.keys("Escape")  # cancel: training goes on
        first = _step(tmux.wait_for("RUNNING"))
        deadline = time.monotonic() + 30
        while _step(tmux.screen()) <= first and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _step(tmux.screen()) > first, tmux.screen()
        tmux.keys("q")
        tmux.wait_for("Quit tui-tfs?")
        tmux.keys("s")
        screen = tmux.wait_for("app-exit-status 0", timeout=30)
        saved = tmp_path / "checkpoints" / "reverse.safetensors"
        match = re.search(r"saved reverse at step (\d+) to (\S+)", screen)
        assert match and match.group(2) == "checkpoints/reverse.safetensors", screen
        assert load_checkpoint(saved).step == int(match.group(1)) > first
    finally:
        tmux.close()


def test_a_terminal_that_hangs_up_while_training_saves_the_run_first(tmp_path):
    """A dropped SSH connection or a closed terminal sends SIGHUP, and no question can be
    asked: the app saves the run where q's question would have, then ends."""
    tmux = Tmux()
    saved = tmp_path / "checkpoints" / "reverse.safetensors"
    try:
        tmux.start(f"cd {shlex.quote(str(tmp_path))} && {shlex.quote(shutil.which('tui-tfs'))} "
                   f"--ascii explore reverse")
        tmux.wait_for("forward 1/")
        tmux.keys("C-t")
        tmux.wait_for("space starts training")
        tmux.keys("Space")
        tmux.wait_for("RUNNING")
        deadline = time.monotonic() + 30
        while _step(tmux.screen()) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        shown = _step(tmux.screen())
    finally:
        tmux.close()  # the terminal goes: SIGHUP to the app
    deadline = time.monotonic() + 30
    while not saved.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # written whole (the checkpoint is renamed into place)
    assert load_checkpoint(saved).step >= shown >= 5
