"""Snapshots of the main screens at 80x24, Unicode and ASCII, as the plain text a user reads.

Text, not SVG: a diff of a text snapshot shows exactly which characters changed, and it does
not depend on a snapshot plugin's version. Accept a reviewed change with
TUI_TFS_UPDATE_SNAPSHOTS=1.
"""
from __future__ import annotations

import pytest

from conftest import assert_snapshot, drive, screen_text
from tui_tfs.app import TfsApp

pytestmark = pytest.mark.timeout(120)


def at_cross_attention(pilot):
    async def go():
        app = pilot.app
        app.session.goto(app.session.trace.find_path("decoder.blocks.0.cross_attn.softmax"))
        app.screen.observe()
        await pilot.pause()
    return go()


SCREENS = {
    "picker": (None, []),
    "explorer_start": ("reverse", []),
    "explorer_attention": ("reverse", [at_cross_attention, "a"]),
    "explorer_masked": ("reverse", [at_cross_attention, "Y", "a", "S"]),
    "explorer_backward_grads": ("reverse", ["b", "n", "n", "d"]),
    "help": ("reverse", ["question_mark"]),
}


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
@pytest.mark.parametrize("name", list(SCREENS))
def test_snapshot(name, ascii, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./checkpoints/ for the picker to list
    scenario, steps = SCREENS[name]
    seen = {}

    async def grab(pilot):
        seen["text"] = screen_text(pilot.app)

    drive(TfsApp(scenario, None, ascii=ascii, color=True), *steps, grab)
    if ascii:
        assert seen["text"].isascii()
    assert_snapshot(f"{name}_{'ascii' if ascii else 'unicode'}", seen["text"])
