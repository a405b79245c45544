"""The real command in tmux at 80x23 (a student's 80x24 terminal inside tmux): train
reversal past two probes, open the scrubber, go back to the snapshot before training
and read an attention map that differs from the newest one."""
from __future__ import annotations

import re
import shutil
import time

import pytest
from test_tmux import _command
from test_tmux_layout import SizedTmux

pytestmark = [pytest.mark.timeout(400),
              pytest.mark.skipif(shutil.which("tmux") is None,
                                 reason="tmux is not installed (apt-get install tmux)")]
HEADER = re.compile(r"step (\d+) \(snapshot (\d+) of (\d+)\)  (training loss [\d.e-]+|before "
                    r"training)  probe loss [\d.e-]+")


def trained_steps(screen: str) -> int:
    match = re.search(r"step\s+(\d+) / 1500", screen)
    return int(match.group(1)) if match else 0


def attention_map(screen: str) -> list[str]:
    """The map's rows: from the line after the 0..1 legend to the footer."""
    lines = screen.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("0 ▁▂▃▄▅▆▇█ 1"))
    return [line for line in lines[start + 1:] if line.strip() and "Help" not in line]


def test_scrub_back_to_before_training_in_a_real_terminal():
    tmux = SizedTmux()
    try:
        tmux.start_in_terminal(_command(), 80, 23)  # an 80x24 terminal less tmux's status row
        assert tmux.run("display", "-p", "#{pane_width}x#{pane_height}").strip() == "80x23"
        tmux.wait_for("forward 1/")
        tmux.keys("C-t")
        tmux.wait_for("space starts training")
        tmux.keys("Space")
        deadline = time.monotonic() + 300
        while trained_steps(tmux.screen()) < 60:  # probes every 10 steps, and at the pause
            assert time.monotonic() < deadline, tmux.screen()
            time.sleep(0.5)
        tmux.keys("Space")
        tmux.wait_for("PAUSED")
        tmux.keys("a")
        screen = tmux.wait_for("(snapshot")
        assert len(screen.rstrip("\n").splitlines()) <= 23
        newest = HEADER.search(screen)
        assert newest, screen
        assert int(newest.group(1)) >= 50 and newest.group(2) == newest.group(3)
        assert "decoder.blocks.1.cross_attn (cross-attention) head 1/4" in screen
        late = attention_map(screen)
        assert len(late) == 7, screen  # the key tokens and six query rows: all on screen
        tmux.keys("Home")
        screen = tmux.wait_for("before training")
        first = HEADER.search(screen)
        assert first and first.group(1) == "0" and first.group(2) == "1", screen
        early = attention_map(screen)
        assert early[0] == late[0]  # the same probe's tokens across the top
        assert early != late, screen  # training changed where the queries look
        tmux.keys("Escape")
        tmux.wait_for("PAUSED")
        tmux.keys("q")
        tmux.wait_for("Quit tui-tfs?")
        tmux.keys("n")
        tmux.wait_for("app-exit-status 0", timeout=20)
    finally:
        tmux.close()
