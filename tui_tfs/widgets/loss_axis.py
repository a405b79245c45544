"""The loss plot's y axis: linear or log, fitted to the plot's rows so that every label tells
the truth about its row and the reference lines sit exactly on a row of their own.

A terminal plot has few rows (six or seven at 80x24), so a value lands on the nearest row and
a tick placed between rows is drawn on the nearest one too: plotext's own ticks (2.8, 2.1, 1.4,
0.7 over rows 0.57 apart) once put "best 0.42" on a row labelled 0.7. Here the rows are chosen
first: `fit_axis` picks the bottom and the step between rows so that the reference values (the
optimum, ln V) fall exactly on rows and the data fits; the labels are the rows' own values.

    axis = fit_axis([0.4, 2.9], anchors=[0.42, 2.71], rows=6, log=True)
    axis.plot(0.42)                  # the value in plot units (log10 on a log axis)
    positions, labels = axis.ticks([0.42, 2.71])
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

EPS = 1e-9  # rows are counted with this slack, so a value exactly on a row stays on it


@dataclass(frozen=True)
class YAxis:
    """Rows 0 (top) .. rows-1 (bottom); row r holds the value `bottom + (rows-1-r) * step`
    in plot units (log10 of the value on a log axis)."""

    log: bool
    bottom: float  # the bottom row's value, plot units
    step: float  # plot units from one row to the next (> 0)
    rows: int

    @property
    def top(self) -> float:
        return self.bottom + (self.rows - 1) * self.step

    def drawable(self, value: float | None) -> bool:
        return value is not None and math.isfinite(value) and (value > 0 or not self.log)

    def plot(self, value: float) -> float:
        """A loss in plot units."""
        return math.log10(value) if self.log else value

    def value(self, row: int) -> float:
        """The loss that row `row` (0 = top) stands for."""
        units = self.top - row * self.step
        return 10 ** units if self.log else (0.0 if abs(units) < self.step * 1e-6 else units)

    def row(self, value: float) -> int:
        """The row a loss is drawn on (the nearest one)."""
        return int(round((self.top - self.plot(value)) / self.step))

    def ticks(self, anchors: Sequence[float] = ()) -> tuple[list[float], list[str]]:
        """(positions in plot units, labels): every anchor's row, then the top and bottom rows
        and others, no two labelled rows adjacent; each label is its row's value."""
        chosen: list[int] = []
        wanted = [self.row(a) for a in anchors if self.drawable(a)]
        wanted += [0, self.rows - 1] + list(range(self.rows))
        for r in wanted:
            if 0 <= r < self.rows and all(abs(r - c) >= 2 for c in chosen):
                chosen.append(r)
        chosen.sort()
        values = [self.value(r) for r in chosen]
        for digits in range(2, 8):  # the fewest digits that tell every label from the others
            labels = [tick_label(v, digits) for v in values]
            if len(set(labels)) == len(labels):
                break
        return [self.top - r * self.step for r in chosen], labels


def tick_label(value: float, digits: int = 2) -> str:
    """2.71, 0.42, 0.053, 1.2e-5: `digits` decimals from 1 up, significant digits below."""
    if value == 0:
        return "0"
    if 1 <= abs(value) < 1000:
        return f"{value:.{digits}f}"
    text = f"{value:.{digits}g}"
    return text.replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")


def fit_axis(values: Sequence[float], anchors: Sequence[float | None], rows: int,
             log: bool) -> YAxis:
    """An axis of `rows` rows holding every finite value (positive ones on a log axis) with the
    anchors (most important first; None or undrawable ones skipped) exactly on rows; when the
    data leaves no room for both, only the first is exact, then none."""
    probe = YAxis(log, 0.0, 1.0, max(rows, 1))
    anchors = [probe.plot(a) for a in anchors if probe.drawable(a)]
    data = [probe.plot(v) for v in values if probe.drawable(v)] + anchors
    if not data:
        return YAxis(log, 0.0, 1.0, max(rows, 1))
    lo, hi = min(data), max(data)
    n = rows - 1
    if n < 1:
        return YAxis(log, lo, max(hi - lo, EPS), 1)
    fitted = None
    if len(anchors) >= 2 and abs(anchors[0] - anchors[1]) > EPS:
        fitted = _two_anchors(lo, hi, min(anchors[:2]), max(anchors[:2]), n)
    if fitted is None and anchors:
        fitted = _one_anchor(lo, hi, anchors[0], n)
    if fitted is None:
        span = hi - lo if hi - lo > EPS else max(abs(hi) * 0.2, 0.1)
        fitted = (lo if hi - lo > EPS else lo - span / 2, span / n)
    return YAxis(log, fitted[0], fitted[1], rows)


def _two_anchors(lo: float, hi: float, a: float, b: float, n: int) -> tuple[float, float] | None:
    """(bottom, step) with a and b on rows, [lo, hi] inside, the smallest step that does it."""
    best = None
    for between in range(1, n + 1):
        step = (b - a) / between
        below = max(0, math.ceil((a - lo) / step - EPS))
        above = max(0, math.ceil((hi - b) / step - EPS))
        if below + between + above <= n and (best is None or step < best[1]):
            best = (a - below * step, step)
    return best


def _one_anchor(lo: float, hi: float, a: float, n: int) -> tuple[float, float] | None:
    """(bottom, step) with a on a row and [lo, hi] inside, the smallest step that does it."""
    best = None
    for below in range(n + 1):
        above = n - below
        need_below, need_above = max(0.0, a - lo), max(0.0, hi - a)
        if (below == 0 and need_below > EPS) or (above == 0 and need_above > EPS):
            continue
        step = max(need_below / below if below else 0.0, need_above / above if above else 0.0)
        if step > EPS and (best is None or step < best[1]):
            best = (a - below * step, step)
    return best
