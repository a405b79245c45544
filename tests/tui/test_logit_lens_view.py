"""The logit lens view (W): layers x positions of the current trace, the top next token and
its probability per cell, the target's rank; < and > page through the positions; Esc goes back
to the view it was opened from. At 80x23 and 80x24, Unicode and ASCII.

The cells are compared with the engine's lens (engine.trace.logit_lens, whose numbers are
proved in tests/engine/test_logit_lens.py), read from the screen.
"""
from __future__ import annotations

import re

import pytest

from engine.trace.logit_lens import logit_lens
from tui_tfs.widgets.logit_lens import LogitLensView, percent

from conftest import drive, screen_text

SIZES = [(80, 23), (80, 24)]


def _panel_lines(app) -> list[str]:
    return app.screen.query_one(LogitLensView).text.splitlines()


def _pages(app_factory, size, pages: int):
    """The lens panel's text on its first page and after each of `pages` presses of >, then
    after < and after Esc; with the app and session."""
    seen = []

    async def look(pilot):
        view = pilot.app.screen.query_one(LogitLensView)
        seen.append((view.text, view.text_width, view.display, screen_text(pilot.app)))

    steps = ["W", look]
    for _ in range(pages):
        steps += ["greater_than_sign", look]
    steps += ["less_than_sign", look]
    app = drive(app_factory(), *steps, size=size)
    return seen, app


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("ascii", [False, True])
def test_lens_shows_each_layers_top_token_and_the_targets_rank(make_app, size, ascii):
    seen, app = _pages(lambda: make_app("tiny-lm", ascii=ascii), size, 3)
    session = app.session
    lens = logit_lens(session.model, session.trace, 0)
    tokenizer = session.scenario.tokenizer
    first, width, shown, screen = seen[0]
    assert shown and "logit lens" in screen
    lines = first.splitlines()
    rows = {line.split("  ")[0].strip(): line for line in lines
            if re.match(r"(embed|L\d+|pos|reads|target)\b", line)}
    assert {"embed", "L1", "L2 out", "pos", "reads", "target"} <= set(rows)
    # the first position's cells, layer by layer, as the engine computed them
    for name, row in (("embed", 0), ("L1", 1), ("L2 out", 2)):
        top = tokenizer.label(int(lens.top_ids[row, 0, 0]), ascii_only=ascii)
        cell = f"{top} {percent(lens.top_probs[row, 0, 0])} #{lens.target_rank[row, 0]}"
        assert rows[name][len(name):].lstrip().startswith(cell), (rows[name], cell)
    target = tokenizer.label(int(lens.target_ids[0]), ascii_only=ascii)
    assert rows["target"].split()[1] == target
    # every position is on exactly one page, and no line is wider than the panel
    pages = []
    for text, width, _, _ in seen[:-1]:
        assert all(len(line) <= width for line in text.splitlines())
        pos = next(line for line in text.splitlines() if line.startswith("pos "))
        page = [int(p) for p in pos.split()[1:]]
        if not pages or page != pages[-1]:  # > on the last page stays there
            pages.append(page)
    assert len(pages) > 1  # the positions do not all fit: they page
    assert [p for page in pages for p in page] == list(range(1, lens.positions + 1))
    # < goes back one page
    pos = next(line for line in seen[-1][0].splitlines() if line.startswith("pos "))
    assert [int(p) for p in pos.split()[1:]] == pages[-2]
    if ascii:
        assert all(ch.isascii() for ch in screen)


def test_escape_goes_back_to_the_view_it_came_from(make_app):
    seen = []

    async def look(pilot):
        seen.append((type(pilot.app.screen).__name__, getattr(pilot.app.screen, "state", None)))

    drive(make_app("tiny-lm"), "a", "W", look, "escape", look, "greater_than_sign",
          look, "escape", look, "escape", look)
    assert [(name, state.shown if state else None) for name, state in seen] == [
        ("ExplorerScreen", "lens"), ("ExplorerScreen", "attention"),
        ("ExplorerScreen", "lens"), ("ExplorerScreen", "attention"), ("PickerScreen", None)]


def test_an_encoder_decoder_gets_a_message(make_app):
    seen = []

    async def look(pilot):
        seen.append(pilot.app.screen.query_one(LogitLensView).text)

    drive(make_app("reverse"), "W", look)
    assert "decoder-only" in seen[0] and "EncoderDecoder" in seen[0]


def test_the_lens_is_computed_once_per_trace(make_app, monkeypatch):
    from tui_tfs.widgets import logit_lens as view_module

    calls = []
    real = view_module.logit_lens

    def counted(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(view_module, "logit_lens", counted)
    app = drive(make_app("char-lm"), "W", "greater_than_sign", "greater_than_sign",
                "less_than_sign", "r", "greater_than_sign")
    assert len(calls) == 2 and calls[0] is not calls[1]  # the first trace, then the new batch's
    assert calls[1] is app.session.trace


def test_a_large_models_lens_comes_from_a_thread(make_app, monkeypatch):
    """Above INLINE_COST (GPT-2 small is 16 G multiply-adds) the lens is computed in a worker
    thread: the view says so, then draws it when it arrives, without a key pressed."""
    from tui_tfs.widgets import logit_lens as view_module

    monkeypatch.setattr(view_module, "INLINE_COST", 0)
    seen = []

    async def wait_and_look(pilot):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        seen.append(pilot.app.screen.query_one(LogitLensView).text)

    app = drive(make_app("tiny-lm"), "W", wait_and_look)
    lens = logit_lens(app.session.model, app.session.trace, 0)
    tokenizer = app.session.scenario.tokenizer
    row = next(line for line in seen[0].splitlines() if line.startswith("L2 out"))
    assert row.split()[2] == tokenizer.label(int(lens.top_ids[2, 0, 0]))


def test_the_thread_view_says_it_is_computing(make_app, monkeypatch):
    from tui_tfs.widgets import logit_lens as view_module

    monkeypatch.setattr(view_module, "INLINE_COST", 0)
    monkeypatch.setattr(view_module.LogitLensView, "run_worker", lambda *a, **k: None)  # never
    seen = []

    async def look(pilot):
        seen.append(pilot.app.screen.query_one(LogitLensView).text)

    drive(make_app("tiny-lm"), "W", look)
    assert "computing the logit lens: 3 layers x" in seen[0]
