"""The real command in tmux at 80x23, what a standard 80x24 terminal leaves inside tmux or
screen: the explorer and the training screen show whole, not "make the terminal larger"."""
from __future__ import annotations

import re
import shlex
import time

from tests.tui.conftest import opening_trace
from tests.tui.test_tmux import ROOT, Tmux, _command

import pytest

pytestmark = pytest.mark.timeout(180)


class SizedTmux(Tmux):
    """The shared tmux helper, at a size of our choosing."""

    def start_in_terminal(self, command: str, width: int, height: int) -> None:
        """A pane of `width` x `height` from the first frame on (a detached session's window is
        the size asked for; the status line would be drawn on an attached client's extra row)."""
        # the test run exports LINES=24 COLUMNS=80, which would override the pane's real size
        env = f"cd {shlex.quote(str(self.cwd))} && unset LINES COLUMNS && export LANG=C.UTF-8 " \
              f"TERM=xterm-256color PYTHONPATH={shlex.quote(str(ROOT))} && {command}"
        self.run("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", str(width), "-y",
                 str(height), f"sh -c {shlex.quote(env + '; echo app-exit-status $?; sleep 60')}")

    def settled(self, text: str) -> str:
        """The screen once `text` is on it and two captures 0.3 s apart agree."""
        screen = self.wait_for(text)
        for _ in range(50):
            time.sleep(0.3)
            again = self.screen()
            if again == screen:
                return screen
            screen = again
        return screen


def test_explorer_and_training_read_whole_at_80x23():
    tmux = SizedTmux()
    try:
        tmux.start_in_terminal(_command(), 80, 23)
        assert tmux.run("display", "-p", "#{pane_width}x#{pane_height}").strip() == "80x23"
        screen = tmux.settled(f"forward 1/{len(opening_trace('reverse'))}")
        rows = screen.rstrip("\n").split("\n")
        assert len(rows) == 23 and "Make the terminal larger" not in screen
        assert "reverse" in rows[0] and "formula" in rows[0], screen  # tree and formula panel
        assert re.search(r"norm 13\.76\s", screen), screen  # the tensor's statistics, whole
        assert rows[-1].rstrip().endswith("? Help ^t Train"), rows[-1]  # no key cut
        tmux.keys("C-t")
        tmux.wait_for("space Start/Pause")
        tmux.keys("Space")
        time.sleep(4)
        tmux.keys("Space")
        tmux.wait_for("paused at step")
        tmux.keys("2")
        screen = tmux.settled("gradient norm per layer over steps")
        norms = [line for line in screen.split("\n")
                 if re.match(r"│ (en|de)coder\.\S+\s+[▁▂▃▄▅▆▇█]+\s+", line)]
        assert len(norms) == 6, screen  # encoder and decoder: embedding, two blocks
        for line in norms:
            assert re.search(r"\s\d\.\d\de[-+]\d\d(\s+\S)?\s*│$", line.rstrip()), line
        assert "Make the terminal larger" not in screen
    finally:
        tmux.close()  # ends the app with its server (quitting may ask about unsaved weights)
