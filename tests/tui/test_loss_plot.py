"""The loss plot read back as a user reads it: which row each reference line is drawn on, what
the axis labels beside the rows say, the log and linear axes, the held-out marks over the
training line. The plot is pure text (no terminal); the key that switches the axis is driven
with Pilot."""
from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from conftest import screen_text

from tui_tfs.style import Style
from tui_tfs.widgets.loss_axis import fit_axis
from tui_tfs.widgets.loss_plot import LEVEL, PlotData, legend_text, loss_plot_text

pytestmark = pytest.mark.timeout(120)

UNIFORM, BEST = math.log(15), 0.4213  # tiny-lm: ln V = 2.71, "best 0.42"


def tiny_lm_run(n: int = 600, evals: int = 8) -> PlotData:
    """A run shaped like tiny-lm's: from about ln V down towards the optimum."""
    steps = np.arange(1, n + 1)
    losses = (UNIFORM - BEST) * np.exp(-steps / (n / 6)) + BEST + 0.02 * np.sin(steps)
    eval_steps = [int(s) for s in np.linspace(n / evals, n, evals)]
    eval_losses = [float(losses[s - 1] + 0.01) for s in eval_steps]
    return PlotData(steps, losses, eval_steps, eval_losses, UNIFORM, BEST)


def read_plot(plot: str, ascii: bool) -> list[tuple[str, str]]:
    """(axis label, what is drawn inside the frame) for each row of the plot's canvas."""
    lines = plot.splitlines()
    axis = lines[0].index("+" if ascii else "┌")
    return [(line[:axis].strip(), line[axis + 1:-1]) for line in lines[1:-2]]


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
@pytest.mark.parametrize("log", [True, False], ids=["log", "linear"])
@pytest.mark.parametrize("height", [7, 8, 9, 10, 12, 16])
def test_reference_lines_are_drawn_on_the_rows_labelled_with_their_values(ascii, log, height):
    """tiny-lm's "best 0.42" was drawn on the row labelled 0.7 (plotext's ticks were not on
    rows). Each dotted line's row now carries its value as the axis label."""
    style = Style(ascii=ascii, color=False)
    data = tiny_lm_run()
    plot = loss_plot_text(data, 51, height, style, log=log).plain
    rows = read_plot(plot, ascii)
    level = LEVEL[ascii][0]
    lined = [label for label, inside in rows if inside.count(level) >= 3]
    assert sorted(lined) == ["0.42", "2.71"], plot
    legend = legend_text(data, style, 51, log=log).plain
    assert f"{LEVEL[ascii]} ln V 2.71" in legend and f"{LEVEL[ascii]} best 0.42" in legend


@pytest.mark.parametrize("log", [True, False], ids=["log", "linear"])
@pytest.mark.parametrize("height", [7, 9, 12, 20])
def test_axis_labels_are_the_values_of_their_rows(log, height):
    """Rows are equally spaced in the axis's units (log10 of the loss on a log axis): the
    labels, read off the screen, lie on one straight line (within their rounding). plotext's
    own ticks put 2.8 and 2.1 one row apart but 2.1 and 1.4 two rows apart."""
    data = tiny_lm_run()
    data.losses = data.losses * np.linspace(1, 0.05, len(data.losses))  # down to 0.02: decades
    plot = loss_plot_text(data, 51, height, Style(ascii=True, color=False), log=log).plain
    labelled = [(r, float(label)) for r, (label, _) in enumerate(read_plot(plot, True))
                if label]
    assert len(labelled) >= 2, plot
    rows = np.array([r for r, _ in labelled], dtype=float)
    units = np.array([math.log10(v) if log else v for _, v in labelled])
    slope, offset = np.polyfit(rows, units, 1)
    off_by = np.abs(units - (slope * rows + offset)) / abs(slope)  # in rows
    assert off_by.max() < 0.2, (plot, off_by)


def test_log_axis_spreads_the_late_part_of_the_run():
    """On a log axis, a loss going from 0.1 to 0.01 spans as many rows as 1 to 0.1."""
    steps = np.arange(1, 301)
    losses = 10 ** (-steps / 100)  # 1 -> 0.001, a decade per 100 steps
    data = PlotData(steps, losses, uniform=1.0, optimum=None)
    for log in (True, False):
        plot = loss_plot_text(data, 51, 12, Style(ascii=True, color=False), log=log).plain
        rows = read_plot(plot, True)
        drawn = [r for r, (_, inside) in enumerate(rows) if "." in inside]
        late = [r for r, (_, inside) in enumerate(rows) if "." in inside[len(inside) * 2 // 3:]]
        if log:  # the last third of the steps (one decade) gets about a third of the rows
            assert len(late) >= len(rows) // 4, plot
        else:  # squashed onto the bottom row or two
            assert len(late) <= 2 and len(drawn) >= len(rows) - 1, plot


@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
@pytest.mark.parametrize("log", [True, False], ids=["log", "linear"])
def test_held_out_marks_are_drawn_over_the_training_line(ascii, log):
    """Every held-out loss is an `o` on the screen, even where it sits on the training line."""
    data = tiny_lm_run(evals=8)
    data.eval_losses = [float(data.losses[s - 1]) for s in data.eval_steps]  # on the line
    plot = loss_plot_text(data, 51, 10, Style(ascii=ascii, color=False), log=log).plain
    inside = "\n".join(inside for _, inside in read_plot(plot, ascii))
    assert inside.count("o") == len(data.eval_steps), plot


def test_fit_axis_puts_the_anchors_exactly_on_rows():
    """Both reference levels land exactly on rows when the data lies between them; the
    optimum always does (data beyond both may leave no step that fits both); the data fits."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        log, rows = bool(rng.integers(2)), int(rng.integers(3, 30))
        best = float(rng.uniform(0.01, 2.0))
        uniform = best + float(rng.uniform(0.05, 8.0))
        inside = list(rng.uniform(best, uniform, size=20))
        beyond = list(rng.uniform(best * 0.5, uniform * 1.5, size=20))
        for values, exact in ((inside, (best, uniform)), (beyond, (best,))):
            axis = fit_axis(values, [best, uniform], rows, log)
            for value in [best, uniform] + values:
                assert axis.bottom - 1e-9 <= axis.plot(value) <= axis.top + 1e-9
            for anchor in exact:
                assert axis.value(axis.row(anchor)) == pytest.approx(anchor, rel=1e-9)


def test_y_switches_the_axis_and_the_title_says_which(make_app):
    from tui_tfs.screens.training import TrainingScreen
    from tui_tfs.training import TrainingController
    from tui_tfs.widgets.loss_plot import LossPlot

    app = make_app("tiny-lm")

    async def main():
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            s = app.session
            s.training = c = TrainingController(s.scenario, s.model, eval_every=5)
            c.total_steps = 30
            await pilot.press("ctrl+t")
            await pilot.pause()
            assert isinstance(app.screen, TrainingScreen)
            await pilot.press("space")
            while c.state == "running":
                await pilot.pause(0.05)
            await pilot.pause(0.2)
            text = screen_text(app)
            assert "log scale (y)" in text, text
            log_plot = app.screen.query_one(LossPlot).text
            await pilot.press("y")
            await pilot.pause()
            text = screen_text(app)
            assert "linear scale (y)" in text, text
            linear_plot = app.screen.query_one(LossPlot).text
            assert log_plot != linear_plot
            for plot in (log_plot, linear_plot):  # the optimum's line on its own row, labelled
                assert any(line.lstrip().startswith(f"{c.optimum:.2f}") for line in
                           plot.splitlines()), plot

    asyncio.run(main())
