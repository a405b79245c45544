"""The training screen at every size: panels 1, 2, 3 whole at 80x23 and 80x24, one panel at a
time below that (down to 60x18), and a larger loss plot on a large terminal. The checks on the
screen are test_layout's."""
from __future__ import annotations

import re

import pytest

from tests.tui.conftest import screen_text
from tests.tui.test_layout import NUMBER, SIZES, assert_footer_whole, run
from tui_tfs.app import TfsApp
from tui_tfs.screens.training import TrainingScreen
from tui_tfs.training import TrainingController
from tui_tfs.widgets.loss_plot import legend_text

pytestmark = pytest.mark.timeout(300)


STEPS = 80
TRAINING_PANELS = {"1": ("#tr-predictions", "PredictionsTable"), "2": ("#tr-layers", "GradHistory"),
                   "3": ("#tr-generate", "GenerationPanel")}


def assert_training_panel_whole(screen, key: str, text: str) -> list[str]:
    """Training panel `key` (1, 2, 3): every rendered line fits it, the visible ones are on
    screen whole. Returns the rendered lines."""
    panel_id, widget = TRAINING_PANELS[key]
    panel = screen.query_one(panel_id)
    rendered = panel.query_one(widget).content.plain.split("\n")
    region = panel.scrollable_content_region
    rows = text.split("\n")
    top = int(panel.scroll_y)
    for i, line in enumerate(rendered):
        assert len(line.rstrip()) <= region.width, f"panel {key} cut at its edge: {line!r}\n{text}"
        if top <= i < top + region.height:
            assert line.rstrip() in rows[region.y + i - top], f"{line!r} not whole on screen\n{text}"
    return rendered


def assert_plot_whole(plot, text: str) -> tuple[int, int]:
    """Every line of the loss plot (plot and legend) is on screen where it belongs; returns the
    drawn plot's (columns, rows) without the legend."""
    region = plot.content_region
    rows = text.split("\n")
    lines = plot.text.split("\n")
    assert len(lines) <= region.height, f"the plot is taller than its box\n{text}"
    for i, line in enumerate(lines):
        assert len(line.rstrip()) <= region.width, f"plot line cut: {line!r}\n{text}"
        shown = rows[region.y + i][region.x:region.x + region.width].rstrip()
        assert shown == line.rstrip(), f"plot line {i + 1} reads {shown!r}\n{text}"
    legend = legend_text(plot._data, plot._style, region.width, plot._log).plain.splitlines()
    drawn = lines[:len(lines) - len(legend)]
    return max(len(line.rstrip()) for line in drawn), len(drawn)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
@pytest.mark.parametrize("scenario", ["reverse", "char-lm"])
def test_training_panels_read_whole(scenario, ascii, size):
    """Panels 1, 2, 3 after a few steps: the per-layer norms print whole and equal the last
    norms the controller measured; the metrics read as the controller's."""
    seen = {}

    async def body(pilot):
        app = pilot.app
        s = app.session
        c = TrainingController(s.scenario, s.model, eval_every=STEPS)
        c.total_steps = STEPS  # more steps than the sparklines' columns: full-width lines
        s.training = c
        await pilot.press("ctrl+t")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        assert c.start()
        c.run_for(120.0)  # the steps and the held-out evaluation, on this thread
        assert c.step == STEPS
        screen.refresh_all()
        for key in ("1", "3", "2"):  # 2 last: its lines are read below
            if key == "3":  # a generation to show, as g and a prompt would give
                screen.prompt = s.scenario.examples[0]
                screen._generate()
            await pilot.press(key)
            await pilot.pause()
            seen[key] = text = screen_text(app)
            assert_footer_whole(app, text)
            rendered = assert_training_panel_whole(screen, key, text)
        for group, norms in c.layer_norms.items():
            line = next(line for line in rendered if line.startswith(group + " "))
            m = re.search(rf"\s({NUMBER})$", line.rstrip())
            assert m, line
            assert float(m.group(1)) == pytest.approx(norms[-1], rel=6e-3), (group, line)
        loss = re.search(rf"loss\s+({NUMBER})", text)
        assert float(loss.group(1)) == pytest.approx(c.latest.loss, abs=6e-5)

    run(TfsApp(scenario, None, ascii=ascii), body, size)


def _trained_screen(app, steps: int):
    """The training screen after `steps` steps, trained on this thread."""
    s = app.session
    c = TrainingController(s.scenario, s.model, eval_every=steps)
    c.total_steps = steps
    s.training = c
    return c


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_small_training_screen_one_panel_at_a_time(ascii):
    """60x18: the loss plot alone, v flips to the numbers, then to panel 1 (2 and 3 too), then
    back to the plot; each fills the screen and reads whole. 80x23: every panel, as before."""
    seen = {}

    async def body(pilot):
        app = pilot.app
        c = _trained_screen(app, 40)
        await pilot.press("ctrl+t")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        assert c.start()
        c.run_for(120.0)
        screen.refresh_all()
        plot, metrics = screen.query_one("#tr-plot"), screen.query_one("#tr-metrics")
        views = screen.query_one("#tr-views")
        await pilot.pause()
        full = (plot.region, metrics.region, views.region)
        assert all(r.height >= 9 for r in full), full  # the full layout: all three on screen
        await pilot.resize_terminal(60, 18)
        await pilot.pause()
        await pilot.pause()
        assert app.screen is screen and app.compact

        def status_whole(text: str) -> None:
            status = screen.query_one("#tr-status")
            assert str(status.content).rstrip() in text.split("\n")[status.region.y], text
            assert_footer_whole(app, text)

        seen["plot"] = text = screen_text(app)
        assert not metrics.display and not views.display
        assert plot.region.width == 60 and plot.region.height == 16, plot.region  # 18 - status, footer
        columns, rows = assert_plot_whole(plot, text)
        assert rows >= 8 and columns >= 50, (columns, rows, text)
        status_whole(text)
        await pilot.press("v")
        await pilot.pause()
        seen["metrics"] = text = screen_text(app)
        assert metrics.display and not plot.display and not views.display
        assert metrics.region.width == 60 and metrics.region.height == 16, metrics.region
        loss = re.search(rf"loss\s+({NUMBER})", text)
        assert loss and float(loss.group(1)) == pytest.approx(c.latest.loss, abs=6e-5), text
        rendered = metrics.content.plain.split("\n")
        rows_on_screen = text.split("\n")
        region = metrics.content_region
        for i, line in enumerate(rendered[:region.height]):
            assert line.rstrip() == rows_on_screen[region.y + i][
                region.x:region.x + region.width].rstrip(), f"numbers cut: {line!r}\n{text}"
        status_whole(text)
        await pilot.press("v")
        await pilot.pause()
        seen["views"] = text = screen_text(app)
        assert views.display and not plot.display and not metrics.display
        assert views.region.width == 60 and views.region.height == 16, views.region
        assert_training_panel_whole(screen, "1", text)
        status_whole(text)
        for key in ("2", "3"):
            await pilot.press(key)
            await pilot.pause()
            text = screen_text(app)
            assert views.display and views.region.height == 16
            assert_training_panel_whole(screen, key, text)
        await pilot.press("v")
        await pilot.pause()
        assert plot.display and not views.display and plot.region.height == 16
        await pilot.press("1")  # 1/2/3 bring their panel on screen
        await pilot.pause()
        assert views.display and not plot.display
        await pilot.resize_terminal(80, 23)
        await pilot.pause()
        await pilot.pause()
        assert not app.compact and plot.display and metrics.display and views.display
        assert (plot.region, metrics.region, views.region) == full
        flip = next(b for b in TrainingScreen.BINDINGS if b.action == "flip_panel")
        assert flip.description in [c.title for c in app.get_system_commands(screen)]
        await pilot.press("question_mark")
        await pilot.pause()
        help_text = app.screen.query_one("#help-body").content.plain
        assert f"{flip.key:<10}{flip.description}" in help_text, help_text

    run(TfsApp("reverse", None, ascii=ascii), body, (80, 23))


def test_large_terminal_grows_the_loss_plot():
    """120x40 (a projector's terminal): the drawn loss plot has more rows and columns than
    at 80x24, after a few training steps, and still reads whole."""
    sizes = {}

    async def body(pilot):
        app = pilot.app
        c = _trained_screen(app, 20)
        await pilot.press("ctrl+t")
        await pilot.pause()
        screen = app.screen
        assert c.start()
        c.run_for(120.0)
        screen.refresh_all()
        plot = screen.query_one("#tr-plot")
        for size in ((80, 24), (120, 40)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            await pilot.pause()
            sizes[size] = assert_plot_whole(plot, screen_text(app))
        (small_columns, small_rows), (large_columns, large_rows) = sizes[(80, 24)], sizes[(120, 40)]
        assert large_columns > small_columns and large_rows > small_rows, sizes

    run(TfsApp("reverse", None, ascii=False), body, (80, 24))
