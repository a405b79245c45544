"""Shading in a real terminal without colour: tmux at 80x24, NO_COLOR=1 and ASCII glyphs.

addition's first backward event is the loss's d_logits: zero on the prompt rows (the loss
ignores them), which must read as blank cells, with the legend naming the zero-centred scale
and both its ends, and the columns labelled with the vocabulary.
"""
from __future__ import annotations

import re
import shlex
import sys

from test_tmux import Tmux
from test_tmux import pytestmark  # the same skip (no tmux) and timeout


def test_no_colour_ascii_zero_gradient_is_blank_and_the_legend_names_the_scale():
    code = "from tui_tfs.app import run_explorer; run_explorer('addition', None, True)"
    tmux = Tmux()
    try:
        tmux.start(f"NO_COLOR=1 {shlex.quote(sys.executable)} -c {shlex.quote(code)}")
        tmux.wait_for("forward 1/")
        tmux.keys("b")
        tmux.wait_for("[d_logits]")
        tmux.keys("f")  # the formula panel off: the map's rows come into view
        screen = tmux.wait_for("<s>")
        right = [line[30:].rstrip(" |") for line in screen.splitlines()]  # right of the tree
        assert screen.isascii(), screen
        scale = next(part for part in right if part.startswith("zero-centred"))
        assert re.fullmatch(r"zero-centred \+-(\S+) over this map", scale), screen
        limit = re.fullmatch(r"zero-centred \+-(\S+) over this map", scale).group(1)
        assert f"-{limit} &%=- 0 +*#@ +{limit}" in right, screen
        assert "    > > > + 0 1 2 3 4 5 6 7 8 9 =" in right, screen  # the vocabulary, down
        rows = right[right.index("    > > > + 0 1 2 3 4 5 6 7 8 9 =") + 1:]
        assert rows[:4] == ["<s>", "  1", "  2", "  +"], screen  # the prompt's rows: all blank
        tmux.keys("q")
        tmux.wait_for("app-exit-status 0")
    finally:
        tmux.close()
