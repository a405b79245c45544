"""The real command in a real terminal: tmux at 80x24 trains the reversal scenario for a few
seconds and reads the plot and the numbers back from the screen.

Uses `tui-tfs explore reverse` when the console script runs the explorer, else the same entry
point through `python -c` (see test_tmux.py). The app's stderr is left alone: Textual draws there.
"""
from __future__ import annotations

import re
import shutil
import time

import pytest
from test_tmux import Tmux, _command

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(shutil.which("tmux") is None,
                                 reason="tmux is not installed (apt-get install tmux)")]


def _step(screen: str) -> int:
    match = re.search(r"step\s+(\d+) / 1500", screen)
    assert match, screen
    return int(match.group(1))


def test_real_terminal_trains_reversal_and_shows_plot_and_metrics():
    tmux = Tmux()
    try:
        tmux.start(_command())
        tmux.wait_for("forward 1/")
        tmux.keys("C-t")
        tmux.wait_for("space starts training")
        tmux.keys("Space")
        tmux.wait_for("RUNNING")
        screen = tmux.wait_for("exact ", timeout=60)  # the first held-out evaluation
        time.sleep(3)
        screen = tmux.screen()
        first = _step(screen)
        assert first > 0
        assert re.search(r"loss\s+\d\.\d{4}", screen), screen
        assert re.search(r"tokens/s\s+[\d,]+", screen), screen
        assert re.search(r"exact\s+\d+% @\d+", screen), screen
        plot = [line[:53] for line in screen.splitlines()[:12]]
        assert any(re.match(r"│\s*\d\.\d+[┤┼]", line) for line in plot), screen  # y-axis ticks
        assert sum(any("\u2800" <= ch <= "\u28ff" for ch in line) for line in plot) >= 2, screen
        assert any(re.search(r"input\s+target\s+model", line) for line in screen.splitlines())
        time.sleep(1.5)
        assert _step(tmux.screen()) > first  # it keeps training while we read
        tmux.keys("Space")
        screen = tmux.wait_for("PAUSED")
        tmux.keys("q")
        tmux.wait_for("Quit tui-tfs?")  # trained, not saved: the app asks first
        tmux.keys("n")  # quit without saving (this test runs in the repository)
        screen = tmux.wait_for("app-exit-status 0", timeout=20)
        assert "RUNNING" not in screen and "PAUSED" not in screen, screen
    finally:
        tmux.close()
