"""Show the code: every event of a trace of both kinds of model opens the engine function that
emitted it, with the op's own lines marked; the explorer's C opens it, Esc closes it.

The assertions hold for any sensible layout of the layers: the marked lines are inside the
function, end with the event's emit, and hold the op's own NumPy operation (softmax: exp,
layernorm: mean, a product: @ or matmul).
"""
from __future__ import annotations

import asyncio

import pytest
from conftest import screen_text

from engine.maths.recorder import FORWARD
from tui_tfs.screens.explorer import ExplorerScreen
from tui_tfs.screens.help import bindings_text
from tui_tfs.screens.source import SourceScreen
from tui_tfs.session import Session
from tui_tfs.source import ENGINE_DIR, SourceError, engine_file, op_source

OP_WORDS = {  # forward op -> what its lines compute with (any one of them)
    "softmax": ("exp", "softmax("),
    "layernorm": ("mean",),
    "scores": ("@", "matmul", "einsum"),
    "attend": ("@", "matmul", "einsum"),
}


@pytest.mark.parametrize("scenario", ["reverse", "char-lm"])  # encoder-decoder, decoder-only
def test_every_event_shows_its_own_lines(scenario):
    trace = Session.open(scenario).trace
    seen_ops = set()
    for event in trace.events:
        where = event.where
        assert where is not None, f"event {event.index} ({event.path}) has no place"
        path = engine_file(where)
        assert path.is_relative_to(ENGINE_DIR) and path.is_file()
        source = op_source(where)
        assert source.path.startswith("engine/")
        first, last = source.marked
        n_lines = len(source.code.splitlines())
        assert source.start <= first <= last < source.start + n_lines, (event.path, source)
        assert first <= where.line <= last, f"{event.path}: the emit is not among its lines"
        assert source.marked_text().strip(), f"{event.path}: nothing marked"
        if event.phase == FORWARD and event.op in OP_WORDS:
            seen_ops.add(event.op)
            assert any(w in source.marked_text() for w in OP_WORDS[event.op]), (
                f"{event.path} ({event.op}): none of {OP_WORDS[event.op]} in\n"
                f"{source.marked_text()}")
    assert {"softmax", "layernorm", "scores", "attend"} <= seen_ops


def test_only_engine_files_are_read(tmp_path):
    from engine.maths.recorder import Where

    outside = tmp_path / "x.py"
    outside.write_text("def f():\n    return 1\n")
    with pytest.raises(SourceError, match="not a file of the engine"):
        op_source(Where(str(outside), "f", 1, 2, None))
    with pytest.raises(SourceError, match="no recorded place"):
        op_source(None)


def _to_op(pilot, app, op: str, phase: str = FORWARD):
    async def go():
        for _ in range(400):
            e = app.session.event
            if e.op == op and e.phase == phase:
                return
            await pilot.press("n")
        raise AssertionError(f"no {phase} {op} event")
    return go()


@pytest.mark.parametrize("size", [(80, 23), (80, 24)])
@pytest.mark.parametrize("ascii,color", [(False, True), (True, False), (False, False)])
def test_c_opens_the_code_of_the_current_event(make_app, size, ascii, color):
    app = make_app("reverse", ascii=ascii, color=color)

    async def main():
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await _to_op(pilot, app, "softmax")
            event = app.session.event
            source = op_source(event.where)
            await pilot.press("C")
            await pilot.pause()
            await pilot.pause(0.1)
            assert isinstance(app.screen, SourceScreen)
            text = screen_text(app)
            assert f"Code of forward softmax (event {event.index + 1})" in text, text
            assert source.path in text and f"{source.marked[0]}-{source.marked[1]}" in text
            pointer = ">" if ascii else "❱"
            marked_rows = [r for r in text.splitlines() if f"{pointer} {source.marked[1]}" in r
                           or f"{pointer} {source.marked[0]}" in r]
            assert marked_rows, f"the op's lines are not marked:\n{text}"
            if ascii:
                assert text.isascii(), text
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, ExplorerScreen)
            await pilot.press("b", "C")  # a backward event has its code too
            await pilot.pause()
            assert isinstance(app.screen, SourceScreen)
            assert "Code of backward" in screen_text(app)
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, ExplorerScreen)
    asyncio.run(main())


def test_the_key_is_in_help_and_the_palette(make_app):
    help_text = bindings_text(ExplorerScreen.GROUPS).plain
    assert "C         Code: the engine lines that computed this event" in help_text
    app = make_app("reverse")

    async def main():
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            commands = {(c.title, c.help) for c in app.get_system_commands(app.screen)}
            assert ("Code: the engine lines that computed this event", "key C") in commands
    asyncio.run(main())
