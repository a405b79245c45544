"""Every view at 80x23 (a standard terminal inside tmux) and 80x24, Unicode and ASCII, on
scenarios whose labels differ in width: what each view exists to show reads whole.

Two kinds of check on the screen as a user sees it (`screen_text`):
- every line a view rendered that is not a map row (a label and shade cells, which scroll
  sideways by design) fits the panel and is on screen exactly, so no header, legend or
  number is cut at the panel's edge;
- the numbers each view is for, parsed back from the screen, equal what the session computed
  (statistics, gradient norms, entropies, loss), and the markers are there (BROKEN, [stage]).
"""
from __future__ import annotations

import asyncio
import re

import pytest

from tests.tui.conftest import screen_text
from tui_tfs.app import TfsApp
from tui_tfs.render import entropy, softmax
from tui_tfs.shading import MASKED, NEGATIVE_RAMP, POSITIVE_RAMP, PROBABILITY_RAMP
from tui_tfs.screens import ExplorerScreen, TooSmallScreen
from tui_tfs.widgets import FormulaPanel, StatusLine

pytestmark = pytest.mark.timeout(300)

SIZES = [(80, 23), (80, 24)]
SCENARIOS = ["reverse", "tiny-lm", "addition", "char-lm"]
NUMBER = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def run(app, body, size):
    async def main():
        async with app.run_test(size=size, notifications=True) as pilot:
            await pilot.pause()
            await body(pilot)
    asyncio.run(main())


def _is_map_row(line: str, ascii: bool) -> bool:
    """A row of shade cells after an optional label: these scroll sideways, by design."""
    glyphs = set(POSITIVE_RAMP[ascii] + NEGATIVE_RAMP[ascii] + PROBABILITY_RAMP[ascii]
                 + MASKED[ascii]) | {"?", "!", " "}
    label, _, body = line.lstrip().partition(" ")  # labels are at most 8 columns
    return len(label) <= 8 and len(body.strip()) >= 3 and set(body) <= glyphs


def assert_panel_whole(app, panel, screen: str, ascii: bool) -> None:
    """Each rendered line of `panel` (a TextPanel) that is not a map row or a map's column
    header fits the panel; the visible ones are on screen exactly where they belong."""
    lines = panel.text.split("\n")
    region = panel.content_region
    width = panel.text_width
    rows = screen.split("\n")
    top = int(panel.scroll_y)
    for i, line in enumerate(lines):
        if _is_map_row(line, ascii) or (i + 1 < len(lines) and _is_map_row(lines[i + 1], ascii)
                                        and panel.max_scroll_x > 0):
            continue
        assert len(line.rstrip()) <= width, \
            f"{panel.id}: line {i + 1} is wider ({len(line.rstrip())}) than the panel " \
            f"({width}) and would be cut:\n{line}\n--- screen ---\n{screen}"
        if top <= i < top + region.height:
            shown = rows[region.y + i - top][region.x:region.x + width].rstrip()
            assert shown == line.rstrip(), f"{panel.id}: line {i + 1} reads {shown!r} on " \
                                           f"screen, not {line.rstrip()!r}\n{screen}"


def assert_tree_whole(app, screen: str) -> None:
    """Every layer-tree leaf on screen shows its whole label ('attn_drop dropout' was cut to
    'attn_drop dropou' at the tree's edge): a name with its op, or the name alone."""
    tree = app.screen.query_one("#tree")
    region = tree.content_region
    rows = [row[region.x:region.x + region.width] for row in
            screen.split("\n")[region.y:region.y + region.height]]
    session = app.screen.session
    for index, leaf in tree._leaves.items():
        label = leaf.label.plain.strip()
        name = label.split()[0].lstrip(">▶")
        for row in rows:
            words = row.split()
            if any(w.lstrip(">▶") == name for w in words[:-1] + words[-1:]):
                assert label in row or label.lstrip(">▶") in row, \
                    f"tree label {label!r} cut: {row!r}\n{screen}"
                op = session.trace.events[index].op
                tail = row.rstrip().rstrip("▁▂▃▄▅▆▇█ ").split()[-1] if row.strip() else ""
                assert tail in (name, op) or tail.lstrip(">▶") == name or name.endswith(
                    ("…", "...")), f"tree row ends mid-word: {row!r}"


def assert_status_whole(app, screen: str) -> None:
    status = app.screen.query_one(StatusLine)
    content = status.content
    text = content.plain if hasattr(content, "plain") else str(content)
    row = screen.split("\n")[status.region.y]
    assert text.rstrip() in row, f"status line cut: {text!r}\n{screen}"
    session = app.screen.session
    loss = re.search(rf"loss ({NUMBER})", row)
    assert loss and float(loss.group(1)) == pytest.approx(session.trace.loss, abs=6e-5), row
    assert f"{session.event.index + 1}/{len(session.trace)}" in row, row
    for name in session.breaks.active():
        assert f"BROKEN: {name}" in row or name in row.split("BROKEN: ")[1], row


def assert_footer_whole(app, screen: str) -> None:
    """The footer row holds only whole 'key description' pairs of the screen's bindings."""
    row = screen.rstrip("\n").split("\n")[-1]
    pieces = sorted({f"{app.get_key_display(b.binding)} {b.binding.description}"
                     for b in app.screen.active_bindings.values() if b.binding.show}
                    | {"^p palette"}, key=len, reverse=True)
    rest = row
    for piece in pieces:
        rest = rest.replace(piece, "")
    assert not rest.replace("▏", "").replace("|", "").strip(), \
        f"footer has a cut key: {rest.strip()!r} in {row!r}"


def check_stats(screen: str, session) -> None:
    """norm, min, max, mean, std as printed equal the trace's statistics (4 digits)."""
    shown = session.shown_tensor()
    event, name = shown
    stats = session.trace.stats(event.index, name)
    for field in ("norm", "min", "max", "mean", "std"):
        m = re.search(rf"\b{field} ({NUMBER})(?=\s|$)", screen, re.M)
        assert m, f"{field} is not on screen whole:\n{screen}"
        value = float(getattr(stats, field))
        assert float(m.group(1)) == pytest.approx(value, rel=6e-4, abs=1e-12), \
            f"{field} reads {m.group(1)}, is {value}"


def check_grad_norms(screen: str, session, view) -> None:
    """Every per-layer norm on screen reads as the value the session computed (3 digits)."""
    norms = {n.path: n.norm for n in session.grad_norms()}
    found = 0
    for line in view.text.split("\n"):
        m = re.search(rf"\s({NUMBER})$", line.rstrip())
        if m and not line.startswith("parameter"):
            found += 1
            path = next((p for p in norms if line.startswith(p)), None)
            if path is not None and norms[path] is not None:
                assert float(m.group(1)) == pytest.approx(norms[path], rel=6e-3), line
    assert found == sum(v is not None for v in norms.values())


def check_temperature(screen: str, session) -> None:
    """`screen`: the view's rendered lines (each checked whole by `assert_panel_whole`; the
    lowest may be a scroll away)."""
    amap = session.attention_map(stage="masked")
    q = session.temperature_row()
    keep = None if amap.keep is None else amap.keep[q]
    for t in (0.25, 1.0, 4.0):
        m = re.search(rf"T={t:g}\*?\s+(?:entropy )?({NUMBER})\s+(?:max )?({NUMBER})(?:\s|$)",
                      screen, re.M)
        assert m, f"T={t:g} line not whole:\n{screen}"
        w = softmax(amap.values[q], t, keep)
        assert float(m.group(1)) == pytest.approx(entropy(w), abs=6e-4)
        assert float(m.group(2)) == pytest.approx(w.max(), abs=6e-4)


async def explorer_views(pilot, seen: dict) -> None:
    app = pilot.app
    screen = app.screen
    assert isinstance(screen, ExplorerScreen), screen
    style = app.style

    async def look(name: str) -> str:
        await pilot.pause()
        text = screen_text(app)
        seen[name] = text
        assert_status_whole(app, text)
        assert_footer_whole(app, text)
        return text

    text = await look("tensor")
    assert_panel_whole(app, screen.query_one("#tensor"), text, style.ascii)
    assert_tree_whole(app, text)
    check_stats(text, screen.session)
    await pilot.press("v")  # the numbers behind the map: in bands, none cut at the edge
    text = await look("tensor numbers")
    assert_panel_whole(app, screen.query_one("#tensor"), text, style.ascii)
    await pilot.press("v")
    formula = screen.query_one(FormulaPanel)
    assert formula.display
    for key, view in (("a", "attention"), ("A", "overview"), ("P", "positional"),
                      ("E", "embedding"), ("T", "temperature"), ("K", "scaling")):
        await pilot.press(key)
        text = await look(view)
        assert_panel_whole(app, screen.query_one(f"#{view}"), text, style.ascii)
        if view == "attention":
            assert f"[{screen.session.view.stage}]" in text
            await pilot.press("y")  # the cursor deep in an attention layer: long tree rows
            text = await look("attention, next layer")
            assert_tree_whole(app, text)
            assert_panel_whole(app, screen.query_one("#attention"), text, style.ascii)
        if view == "temperature":
            check_temperature(screen.query_one("#temperature").text, screen.session)
    await pilot.press("escape")  # the overview was not open: back would leave; reopen below
    await pilot.pause()
    if not isinstance(app.screen, ExplorerScreen):
        app.open_scenario(screen.session.scenario.name)
        await pilot.pause()
        screen = app.screen
    # every gradient computed: the last event of the backward pass
    screen.session.goto(len(screen.session.trace) - 1)
    screen.observe()
    await pilot.press("d")
    text = await look("grads")
    grads = screen.query_one("#grads")
    assert_panel_whole(app, grads, text, style.ascii)
    check_grad_norms(text, screen.session, grads)
    # the formula panel's whole explanation, on F
    await pilot.press("F")
    text = await look("formula")
    explanation = screen.session.explanation().text.split()
    assert " ".join(explanation[-3:]) in " ".join(text.split()), text
    await pilot.press("F")
    await pilot.press("question_mark")
    text = await look_help(pilot)
    assert "Tab" in text and "scroll" in text


async def look_help(pilot) -> str:
    await pilot.pause()
    return screen_text(pilot.app)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_explorer_view_reads_whole(scenario, ascii, size):
    seen = {}
    run(TfsApp(scenario, None, ascii=ascii), lambda pilot: explorer_views(pilot, seen), size)
    assert not any(isinstance(s, TooSmallScreen) for s in seen)


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_a_broken_switch_shows_whatever_the_path(ascii):
    """The longest path of the trace, a switch on: BROKEN and the switch's name read whole,
    the path is cut from its start with an ellipsis, at 80 and at 60 columns."""
    seen = {}

    async def body(pilot):
        app = pilot.app
        screen = app.screen
        s = screen.session
        s.toggle_break("no_causal_mask")
        screen.observe()
        longest = max(range(len(s.trace)), key=lambda i: len(s.trace.events[i].path))
        s.goto(longest)
        screen.observe()
        for size in ((80, 23), (60, 18)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            seen[size] = text = screen_text(app)
            row = text.split("\n")[app.screen.query_one(StatusLine).region.y]
            assert "BROKEN: no_causal_mask" in row, row
            assert_status_whole(app, text)
            tail = row.rstrip().rsplit(" ", 1)[-1]
            mark = "..." if ascii else "…"
            assert tail.startswith(mark) and s.event.path.endswith(tail[len(mark):]), row
            assert len(tail) > 8, row

    run(TfsApp("reverse", None, ascii=ascii), body, (80, 23))


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_small_terminal_one_panel_at_a_time_then_too_small(ascii):
    """60x18: the view alone (L flips to the tree and back), the status line and footer
    whole; 59x17 is too small; 120x40 grows the tree and the attention cells."""
    seen = {}

    async def body(pilot):
        app = pilot.app
        screen = app.screen
        await pilot.resize_terminal(60, 18)
        await pilot.pause()
        assert app.screen is screen
        tree, view = screen.query_one("#tree"), screen.query_one("#tensor")
        assert not tree.display and view.region.width == 60
        seen["view"] = text = screen_text(app)
        assert_panel_whole(app, view, text, ascii)
        assert_status_whole(app, text)
        assert_footer_whole(app, text)
        check_stats(text, screen.session)
        await pilot.press("L")
        await pilot.pause()
        assert tree.display and tree.region.width == 60 and not view.region.width
        await pilot.press("L")
        await pilot.press("a")
        await pilot.pause()
        attention = screen.query_one("#attention")
        text = screen_text(app)
        assert_panel_whole(app, attention, text, ascii)
        small_cells = attention.text
        await pilot.resize_terminal(59, 17)
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen)
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert app.screen is screen and tree.display and tree.region.width > 28
        text = screen_text(app)
        assert_panel_whole(app, attention, text, ascii)
        def map_width(text: str) -> int:
            return max(len(line.rstrip()) for line in text.split("\n") if _is_map_row(line, ascii))
        assert map_width(attention.text) >= 2 * map_width(small_cells)  # larger cells

    run(TfsApp("reverse", None, ascii=ascii), body, (80, 23))


def test_notifications_leave_the_status_line_and_legends_alone():
    """Two notices after a new batch (r): the status line and the map's legend still read."""
    seen = {}

    async def body(pilot):
        app = pilot.app
        await pilot.press("f", "a")  # the formula panel off: the map and its legend in sight
        await pilot.pause()
        await pilot.press("r")  # a new batch: a notification
        app.screen.notify("a second notice, a long one that takes two lines of the toast")
        await pilot.pause(0.3)
        seen["after"] = after = screen_text(app)
        assert "new batch" in after and "second notice" in after
        assert_status_whole(app, after)
        lines = app.screen.query_one("#attention").text.split("\n")
        title = next(i for i, line in enumerate(lines) if "fixed" in line or "zero-centred" in line)
        for legend in lines[title:title + 2]:  # the scale's name, then both its ends
            assert any(legend.rstrip() in line for line in after.split("\n")), after

    run(TfsApp("reverse", None, ascii=False), body, (80, 23))


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_a_long_dialog_question_wraps_whole(ascii):
    """The divergence question is three lines at 80 columns: every word of it is on screen (a
    dialog's title was one line, cut after 'Training')."""
    from tui_tfs.screens.dialogs import ChoiceScreen

    question = ("Training diverged at step 12: loss nan, gradient norm nan. Training is paused; "
                "the update was undone and the weights of step 11, the last finite loss, are kept.")

    async def body(pilot):
        pilot.app.push_screen(ChoiceScreen(question, [("Open the explorer", "explore"),
                                                      ("Stay here", "stay")]))
        await pilot.pause()
        await pilot.pause()
        text = screen_text(pilot.app)
        r = pilot.app.screen.query_one(".dialog-title").region
        shown = " ".join(row[r.x:r.x + r.width] for row in text.split("\n")[r.y:r.y + r.height])
        assert " ".join(shown.split()) == question, text

    run(TfsApp("reverse", None, ascii=ascii), body, (80, 23))
