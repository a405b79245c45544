"""The live loss plot: training and held-out loss drawn by plotext, in our own small widget.

`loss_plot_text` is pure (lists in, Rich `Text` out) so it is testable without a terminal; the
`LossPlot` widget only sizes it to its own box. plotext's cost grows with the number of
points, so a long run is bucketed down to about two points per column before drawing.

The y axis is logarithmic by default (a loss falls by factors: the late, slow part of a run
stays readable) or linear; either way it is fitted to the plot's rows (loss_axis.py), so the
reference lines, ln(V) (the loss of a uniform guess) and the task's optimum (both dotted), sit
exactly on rows labelled with their values. The training series is drawn first, so the
held-out marks stay visible over it. Markers: `o` at each held-out loss, a dotted vertical
line where the learning rate or a break-it switch changed, and a heavy one where a step went
NaN/Inf and its update was skipped (where both fall in one column, the heavy one is drawn).
ASCII mode turns plotext's box drawing into + - | and those two lines into `:` and `#`, and
draws the series with plain characters (no braille). A second run (the one a branch left) is
drawn in `x` from the step the two parted at, under the live one. Under the plot, the timeline
(timeline.py): a mark for each snapshot on the step axis' columns. The legend under it names
each kind of mark, on as many lines as the plot's width needs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rich.text import Text
from textual.widgets import Static

from ..render import flow
from ..style import Style
from ..wrap import wrap
from .loss_axis import YAxis, fit_axis
from .timeline import canvas_columns, timeline_text

HELD_OUT = "o"  # the held-out loss marker, in both modes: the legend shows the same character
OTHER = "x"  # the other run's losses (a branch's), in both modes
CHANGE = {False: "┊", True: ":"}  # the vertical line at an lr / switch change (plotext's dotted)
NONFINITE = {False: "┃", True: "#"}  # the vertical line at a NaN/Inf step (plotext's heavy)
LEVEL = {False: "┈", True: "--"}  # the ln V line (plotext's dotted; BOX_TO_ASCII makes it -)
BOX_TO_ASCII = str.maketrans({**{c: "-" for c in "─━═┈┄╌"}, **{c: "|" for c in "│║┆╎"},
                              CHANGE[False]: CHANGE[True], NONFINITE[False]: NONFINITE[True],
                              **{c: "+" for c in "┌┐└┘├┤┬┴┼╭╮╰╯┏┓┗┛┣┫┳┻╋╔╗╚╝╠╣╦╩╬"}})


@dataclass
class PlotData:
    """What the plot shows; the screen fills it from the training controller."""

    steps: np.ndarray  # (N,) step numbers of the training losses
    losses: np.ndarray  # (N,) training loss per step (NaN/Inf allowed: they become markers)
    eval_steps: list[int] = field(default_factory=list)  # where the held-out loss was measured
    eval_losses: list[float] = field(default_factory=list)
    uniform: float | None = None  # ln(V)
    optimum: float | None = None  # the task's lowest possible loss
    changes: list[int] = field(default_factory=list)  # steps where lr / a switch changed
    nonfinite: list[int] = field(default_factory=list)  # steps whose loss was NaN/Inf
    snapshots: list[int] = field(default_factory=list)  # steps of the timeline's snapshots
    selected: int | None = None  # index into `snapshots` of the one picked on the timeline
    label: str = "train"  # the training series' name on the legend
    other_steps: np.ndarray | None = None  # (M,) a second run's steps (a branch's other run)
    other_losses: np.ndarray | None = None  # (M,) its training losses
    other_label: str = ""  # its name on the legend
    parted_at: int = 0  # the step the two runs share last (the branch's snapshot)

    @property
    def last_step(self) -> int:
        """The step axis' end: the latest step of either run (2 at least)."""
        last = int(self.steps[-1]) if len(self.steps) else 1
        if self.other_steps is not None and len(self.other_steps):
            last = max(last, int(self.other_steps[-1]))
        return max(last, 2)


def downsample(xs: np.ndarray, ys: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Bucket means of the finite points, at most `max_points` of them (in order)."""
    keep = np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    n = len(xs)
    if n <= max_points or max_points < 1:
        return xs, ys
    edges = np.linspace(0, n, max_points + 1).astype(int)
    counts = np.diff(edges)
    sums_x = np.add.reduceat(xs.astype(np.float64), edges[:-1])
    sums_y = np.add.reduceat(ys.astype(np.float64), edges[:-1])
    return sums_x / counts, sums_y / counts


def loss_plot_text(data: PlotData, width: int, height: int, style: Style,
                   log: bool = True) -> Text:
    """The plot as Rich text of `width` x `height` cells, the loss on a log or linear axis."""
    if width < 20 or height < 5:
        return Text("(too small for the plot)")
    if len(data.steps) == 0:
        return _empty(data, width, height)
    import plotext  # here, not at the top: an explorer that never trains is spared its
    #                 7 MB and 0.3-0.5 s of import (measure_class.py: RSS per idle session)

    fig = plotext.figure
    fig.clear()
    fig.plot_size(width, height)
    xs, ys = downsample(np.asarray(data.steps), np.asarray(data.losses, dtype=np.float64),
                        2 * width)
    other_xs, other_ys = _other_series(data, width)
    axis = y_axis(data, np.concatenate([ys, other_ys]), height, log)
    fig.ruler("y").lim(axis.bottom, axis.top)
    fig.ruler("y").ticks(*axis.ticks(references(data, axis)))
    last = data.last_step
    fig.ruler("x").lim(1, last)
    ticks = sorted({int(round(t)) for t in np.linspace(1, last, max(2, min(6, width // 10)))})
    fig.ruler("x").ticks(ticks, [str(t) for t in ticks])
    other = [(x, axis.plot(y)) for x, y in zip(other_xs, other_ys) if axis.drawable(y)]
    if other:  # the run a branch left: its own marker, so it reads without colour
        fig.draw(fig.signal([float(x) for x, _ in other], [y for _, y in other],
                            marker=OTHER))
    train = [(x, axis.plot(y)) for x, y in zip(xs, ys) if axis.drawable(y)]
    if train:  # first: the held-out marks are drawn over it
        fig.draw(fig.signal([float(x) for x, _ in train], [y for _, y in train],
                            marker="." if style.ascii else "braille").lines())
    held_out = [(s, axis.plot(v)) for s, v in zip(data.eval_steps, data.eval_losses)
                if axis.drawable(v)]
    if held_out:
        fig.draw(fig.signal([float(s) for s, _ in held_out], [v for _, v in held_out],
                            marker=HELD_OUT))
    for value in references(data, axis):
        fig.line(axis.plot(value), style="dotted")
    nonfinite = data.nonfinite[-8:]
    # plotext draws its lines in no set order, so a change (an lr raised just before the loss
    # went NaN) could hide the NaN's line: changes within a column or so of a NaN are left out
    span = (last - 1) / max(1, width - 12)  # steps per plot column, or a little more
    for step in data.changes[-8:]:
        if all(abs(step - bad) > span for bad in nonfinite):
            fig.line(float(step), orientation="v", style="dotted")
    for step in nonfinite:
        fig.line(float(step), orientation="v", style="heavy")
    raw = fig.build().string(colorless=not style.color).rstrip("\n")
    if style.ascii:
        raw = raw.translate(BOX_TO_ASCII)
    text = Text.from_ansi(raw, no_wrap=True)
    text.no_wrap = True
    text.overflow = "crop"
    return text


def _other_series(data: PlotData, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The other run's losses after the step the runs parted at (before it they are one line),
    bucketed to one point a column: its markers are wider than braille dots."""
    if data.other_steps is None or not len(data.other_steps):
        return np.zeros(0), np.zeros(0)
    steps = np.asarray(data.other_steps)
    after = steps > data.parted_at
    return downsample(steps[after], np.asarray(data.other_losses, dtype=np.float64)[after], width)


def y_axis(data: PlotData, losses: np.ndarray, height: int, log: bool) -> YAxis:
    """The y axis for `losses` (the training series as drawn) and the held-out losses, with
    the optimum and ln V exactly on rows; plotext's canvas has `height` - 3 rows (the frame's
    top and bottom and the x labels take the others)."""
    values = list(map(float, losses)) + list(data.eval_losses)
    return fit_axis(values, [data.optimum, data.uniform], height - 3, log)


def references(data: PlotData, axis: YAxis) -> list[float]:
    """The reference levels the axis can draw: the optimum, then ln V."""
    return [v for v in (data.optimum, data.uniform) if axis.drawable(v)]


def _empty(data: PlotData, width: int, height: int) -> Text:
    lines = ["no steps yet: space starts training", ""]
    if data.uniform is not None:
        lines.append(f"a uniform guess scores ln(V) = {data.uniform:.3f}")
    if data.optimum is not None:
        lines.append(f"the best possible loss is {data.optimum:.3f}")
    # wrapped to the box (a 60-column terminal gives it 31 columns), then as many lines as fit
    wrapped = wrap(Text("\n".join(lines)), width, indent=2).split("\n", allow_blank=True)
    return Text("\n", no_wrap=True, overflow="crop").join(wrapped[:height])


def legend_text(data: PlotData, style: Style, width: int | None = None,
                log: bool = True) -> Text:
    """What each mark under the plot is, each with its glyph: one line, or more when `width`
    columns cannot hold it (an entry is never cut). A reference level the axis cannot draw (a
    best loss of 0 on a log axis) is named without a glyph."""
    dot = "." if style.ascii else "⠒"
    entries = [Text(f"{dot} {data.label}", style="dim")]
    if data.other_steps is not None:
        entries.append(Text(f"{OTHER} {data.other_label}", style="dim"))
    entries.append(Text(f"{HELD_OUT} held-out", style="dim"))
    level = LEVEL[style.ascii]
    for name, value in (("ln V", data.uniform), ("best", data.optimum)):
        if value is not None:
            drawn = YAxis(log, 0.0, 1.0, 1).drawable(value)
            entries.append(Text(f"{level} {name} {value:.2f}" if drawn else f"{name} {value:.2f}",
                                style="dim"))
    if data.changes:
        entries.append(Text(f"{CHANGE[style.ascii]} lr/switch", style="dim"))
    if data.nonfinite:
        entries.append(Text(f"{NONFINITE[style.ascii]} NaN at {data.nonfinite[0]}, skipped",
                            style="bold red" if style.color else "bold"))
    return Text("\n", no_wrap=True, overflow="ellipsis").join(flow(entries, width))


class LossPlot(Static):
    """Draws `PlotData` at the widget's own size; `show(data, style, log)` redraws."""

    SCOPED_CSS = False  # some rules start at the App's classes (-compact, -large, -ascii)
    DEFAULT_CSS = """
    LossPlot {
        width: 1fr;
        height: 12;
        border: round $primary;
        border-title-align: left;
    }
    /* below 80x23 one panel at a time (v flips); a projector's terminal: as tall as its row */
    App.-compact LossPlot, App.-large LossPlot { height: 1fr; }
    App.-ascii LossPlot { border: ascii $accent; }
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._data: PlotData | None = None
        self._style = Style()
        self._log = True

    def show(self, data: PlotData, style: Style, log: bool = True) -> None:
        self._data, self._style, self._log = data, style, log
        self._redraw()

    def on_resize(self) -> None:
        if self._data is not None:
            self._redraw()

    def _redraw(self) -> None:
        width, height = self.content_size
        if width <= 0 or height <= 0:
            return
        data, style = self._data, self._style
        legend = legend_text(data, style, width, self._log)
        text = loss_plot_text(data, width, height - len(legend.plain.splitlines()) - 1,
                              style, self._log)
        axis = canvas_columns(text.plain.split("\n", 1)[0], style.ascii)
        text.append("\n")
        text.append_text(timeline_text(data.snapshots, data.selected, axis, data.last_step,
                                       width, style))
        text.append("\n")
        text.append_text(legend)
        self.update(text, layout=False)  # a fixed-size box: no layout pass

    @property
    def text(self) -> str:
        """The plain text shown (for tests)."""
        content = self.content
        return content.plain if isinstance(content, Text) else str(content)
