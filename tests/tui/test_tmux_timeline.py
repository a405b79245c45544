"""The real command in tmux at 80x23: train reversal, move the timeline back to an early
snapshot, open the explorer there and read a cross-attention map that differs from the one of
the latest snapshot, once reversal is learned (90% exact or more)."""
from __future__ import annotations

import re
import shutil
import time

import pytest

from tests.tui.conftest import forward_number, opening_trace
from tests.tui.test_tmux import _command
from tests.tui.test_tmux_layout import SizedTmux

pytestmark = [pytest.mark.timeout(420),
              pytest.mark.skipif(shutil.which("tmux") is None,
                                 reason="tmux is not installed (apt-get install tmux)")]

SOFTMAX = "decoder.blocks.0.cross_attn.softmax"
MAP_ROW = re.compile(r"│\s*(<s>|\d) ((?:[ ▁▂▃▄▅▆▇█] ){5})")  # a query's weights over 5 keys


def attention_rows(screen: str) -> list[str]:
    """The attention map's rows as read on the screen: the weights' glyphs per query."""
    return [m.group(1) + ":" + m.group(2) for line in screen.split("\n")
            if (m := MAP_ROW.search(line[27:]))]


def exact(screen: str) -> int:
    match = re.search(r"exact\s+(\d+)% @\d+", screen)
    return int(match.group(1)) if match else -1


def test_timeline_back_to_an_early_snapshot_shows_another_attention_map_at_80x23():
    tmux = SizedTmux()
    trace = opening_trace("reverse")
    try:
        tmux.start_in_terminal(_command(), 80, 23)
        tmux.settled(f"forward 1/{len(trace)}")
        tmux.keys("l")
        tmux.wait_for("Run to layer")
        tmux.keys("-l", SOFTMAX)
        tmux.wait_for(SOFTMAX)
        tmux.keys("Enter")
        softmax = forward_number(trace, SOFTMAX)
        tmux.wait_for(f"forward {softmax}/{len(trace)}")
        tmux.keys("a")
        tmux.wait_for("queries down, keys across")
        tmux.keys("C-t")
        tmux.wait_for("space Start/Pause")
        tmux.keys("Space")
        screen = tmux.wait_for("RUNNING")
        for _ in range(600):  # until reversal is learned (20-40 s on a quiet machine)
            screen = tmux.screen()
            if exact(screen) >= 90:
                break
            tmux.wait_for("exact", timeout=60)
            time.sleep(0.5)
        assert exact(screen) >= 90, screen
        tmux.keys("Space")
        tmux.wait_for("paused at step")
        tmux.keys("End")
        latest = tmux.settled("(o b w)")
        assert re.search(r"(\d+)/\1: step \d+, loss", latest), latest
        tmux.keys("o")
        final = tmux.settled("queries down, keys across")
        assert f"forward {softmax}/{len(trace)}" in final, final
        final_rows = attention_rows(final)
        assert len(final_rows) == 6, final
        tmux.keys("Escape")
        tmux.wait_for("space Start/Pause")
        tmux.keys("Home", "Right")  # the second snapshot: 10 steps in
        early = tmux.settled("2/")
        assert re.search(r"2/\d+: step 10, loss \d", early), early
        timeline = [line for line in early.split("\n") if "▲" in line]
        assert len(timeline) == 1 and timeline[0].count("╵") >= 3, early
        tmux.keys("o")
        screen = tmux.settled("queries down, keys across")
        assert f"forward {softmax}/{len(trace)}" in screen, screen
        rows = attention_rows(screen)
        assert len(rows) == 6 and rows != final_rows, (screen, final)
        screen = tmux.wait_for("? Help ^t Train")  # the footer, whole
        assert len(screen.rstrip("\n").split("\n")) == 23, screen
    finally:
        tmux.close()
