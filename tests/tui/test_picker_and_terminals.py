"""The picker, scenario files, ASCII and NO_COLOR modes, and a too-small terminal."""
from __future__ import annotations

import pytest

from conftest import drive, screen_text
from tui_tfs.app import TfsApp, wants_ascii, wants_color
from tui_tfs.screens import ExplorerScreen, PickerScreen, PromptScreen, TooSmallScreen

pytestmark = pytest.mark.timeout(120)


def grab(seen, key):
    async def step(pilot):
        seen[key] = (pilot.app.screen, screen_text(pilot.app))
    return step


def test_picker_lists_scenarios_with_card_and_opens_one():
    seen = {}
    app = TfsApp(None, None, ascii=False)
    drive(app, grab(seen, "picker"), "down", grab(seen, "sort"), "enter", grab(seen, "opened"))
    screen, text = seen["picker"]
    assert isinstance(screen, PickerScreen)
    for name in ("reverse", "sort", "copy", "addition", "tiny-lm", "char-lm"):
        assert name in text
    assert "model    encoder-decoder, 2 layers" in text and "'31415'" in text
    assert "Sort a string" in seen["sort"][1]
    screen, text = seen["opened"]
    assert isinstance(screen, ExplorerScreen) and app.session.scenario.name == "sort"


def test_picker_and_cli_list_name_model_kinds_alike(capsys):
    """One vocabulary: the picker's list, its card and `tui-tfs list` say encoder-decoder or
    decoder-only, never the task kinds (seq2seq, lm) or abbreviations (enc-dec)."""
    from tui_tfs.cli import main

    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    seen = {}
    drive(TfsApp(None, None, ascii=False), grab(seen, "picker"))
    picker = seen["picker"][1]
    kinds = {"reverse": "encoder-decoder", "sort": "encoder-decoder", "copy": "encoder-decoder",
             "addition": "decoder-only", "tiny-lm": "decoder-only", "char-lm": "decoder-only"}
    for name, kind in kinds.items():
        assert f"{name}  {kind}" in picker, name
        row = next(line for line in listed.splitlines() if line.startswith(f"{name} "))
        assert row.split()[1] == kind, row
    for text in (picker, listed):
        assert "seq2seq" not in text and "enc-dec" not in text and "  lm " not in text
    assert max(len(line) for line in listed.splitlines()) <= 80


def test_picker_opens_a_scenario_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[scenario]\ntask = "reverse"\nname = "mine"\n[data]\nmax_len = 4\n'
                    'train_size = 100\ntest_size = 10\n[model]\nd_model = 16\nn_heads = 2\n')
    seen = {}

    async def open_file(pilot):
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(pilot.app.screen, PromptScreen)
        pilot.app.screen.query_one("Input").value = str(path)
        await pilot.press("enter")
        await pilot.pause()
        seen["name"] = pilot.app.session.scenario.name
        seen["screen"] = pilot.app.screen

    drive(TfsApp(None, None, ascii=False), open_file)
    assert seen["name"] == "mine" and isinstance(seen["screen"], ExplorerScreen)


def test_explore_by_path_and_bad_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\ntask = "reverse"\n[model]\nn_heads = 5\n')
    seen = {}
    seen["app"] = drive(TfsApp(None, str(bad), ascii=False), grab(seen, "bad"))
    screen, text = seen["bad"]
    assert isinstance(screen, PickerScreen)  # a clear notice, not a crash
    notes = [n.message for n in seen["app"]._notifications]
    assert any("n_heads" in n for n in notes), notes


def test_ascii_mode_reads_without_unicode():
    seen = {}

    async def goto(pilot):
        app = pilot.app
        app.session.goto(app.session.trace.find_path("decoder.blocks.0.self_attn.softmax"))
        app.screen.observe()
        await pilot.pause()

    drive(TfsApp("reverse", None, ascii=True), goto, "a", "S", grab(seen, "masked"))
    text = seen["masked"][1]
    assert text.isascii(), [c for c in text if not c.isascii()][:10]
    assert "+-" in text and "x" in text and "<s>" in text


def test_no_color_style_keeps_the_glyphs():
    seen = {}
    app = TfsApp("reverse", None, ascii=False, color=False)
    drive(app, "a", grab(seen, "map"))
    assert not app.style.color
    assert "queries down, keys across" in seen["map"][1]
    assert any(ch in seen["map"][1] for ch in "░▒▓█")


def test_detection_of_ascii_and_no_color():
    assert wants_ascii({"LANG": "C"}, "ascii")
    assert wants_ascii({"LANG": "en_US.UTF-8", "TERM": "vt100"})
    assert not wants_ascii({"LANG": "en_US.UTF-8", "TERM": "xterm-256color"})
    assert not wants_ascii({}, "UTF-8")
    assert not wants_color({"NO_COLOR": "1"})
    assert wants_color({})


def test_too_small_terminal_shows_a_message_then_recovers():
    seen = {}

    async def shrink_and_grow(pilot):
        await pilot.resize_terminal(59, 17)
        await pilot.pause()
        seen["small"] = (pilot.app.screen, screen_text(pilot.app))
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        seen["big"] = pilot.app.screen

    drive(TfsApp("reverse", None, ascii=False), shrink_and_grow)
    screen, text = seen["small"]
    assert isinstance(screen, TooSmallScreen)
    assert "Make the terminal larger" in text and "60 x 18" in text and "59 x 17" in text
    assert isinstance(seen["big"], ExplorerScreen)


def test_starting_too_small():
    seen = {}
    drive(TfsApp("reverse", None, ascii=False), grab(seen, "s"), size=(40, 10))
    assert isinstance(seen["s"][0], TooSmallScreen)
