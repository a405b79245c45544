"""Differences between two states of a run (two snapshots, or before and after one step), as
numbers and as Rich text (no Textual): a tensor's change B - A on a zero-centred scale, with
its statistics.

    stats = diff_stats(a, b)          # ||B-A||, ||A||, ||B-A|| / ||A||, max |B-A|, mean B-A
    diff_text("decoder.blocks.1.cross_attn.q_proj.w", a, b, "step 250", "step 1500", style, 76)

A state is the packed weights (P,) of the model at a step, and the probe's frame there when it
was probed; a parameter is a slice of the weights in the model's own order
(`model.packed.slices`), so any parameter of any two states compares without a model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rich.text import Text

from engine.training.probe import ProbeFrame

from . import render
from .shading import Scale, short
from .style import Style
from .wrap import wrap

MOST_ROWS = 64  # rows of a change drawn (the rest summarised): a map scrolls, but not forever


@dataclass(frozen=True)
class State:
    """A run at one step: its weights and, when it was probed there, the probe's frame."""

    label: str  # "step 250", "before step 301", "now (step 1500)"
    step: int
    weights: np.ndarray  # (P,) packed weights
    frame: ProbeFrame | None


@dataclass(frozen=True)
class DiffStats:
    """How much B differs from A, all in float64."""

    change_norm: float  # ||B - A||, the L2 norm of the change
    a_norm: float  # ||A||
    relative: float  # ||B - A|| / ||A|| (0 when both are 0; inf when only A is 0)
    max_abs: float  # max |B - A|
    mean: float  # mean of B - A (a drift of every element one way)
    changed: int  # elements whose value differs
    size: int  # elements compared


def diff_stats(a: np.ndarray, b: np.ndarray) -> DiffStats:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a diff needs two tensors of the same shape, got {a.shape} and {b.shape}")
    d = b - a
    change, base = float(np.linalg.norm(d)), float(np.linalg.norm(a))
    relative = change / base if base > 0 else (0.0 if change == 0 else math.inf)
    return DiffStats(change, base, relative, float(np.abs(d).max()) if d.size else 0.0,
                     float(d.mean()) if d.size else 0.0, int(np.count_nonzero(d)), int(d.size))


def parameter(weights: np.ndarray, slices: dict[str, slice], shapes: dict[str, tuple],
              name: str) -> np.ndarray:
    """Parameter `name` out of packed weights (P,), in its own shape."""
    return weights[slices[name]].reshape(shapes[name])


def stats_line(stats: DiffStats, style: Style) -> Text:
    rel = "inf" if math.isinf(stats.relative) else f"{100 * stats.relative:.3g}%"
    text = Text(no_wrap=True, overflow="crop")
    text.append(f"||B-A|| {short(stats.change_norm, 4)}  ||A|| {short(stats.a_norm, 4)}  "
                f"relative ||B-A||/||A|| {rel}\n", style="bold")
    text.append(f"max |B-A| {short(stats.max_abs, 4)}  mean B-A {short(stats.mean, 3)}  "
                f"changed {stats.changed:,} of {stats.size:,}", style="dim")
    return text


def as_rows(values: np.ndarray) -> np.ndarray:
    """A tensor as a 2-D map: a vector is one row; (H, T, S) and beyond fold the leading axes
    into rows."""
    v = np.asarray(values)
    if v.ndim <= 1:
        return v.reshape(1, -1)
    return v.reshape(-1, v.shape[-1])


def diff_text(name: str, a: np.ndarray, b: np.ndarray, a_label: str, b_label: str,
              style: Style, width: int | None) -> Text:
    """The change B - A of one tensor: its name and shape, which states, the statistics, and
    the change as a zero-centred map (blank: unchanged), cropped to fit `width` columns."""
    stats = diff_stats(a, b)
    text = Text(no_wrap=True, overflow="crop")
    text.append(wrap(Text(f"{name} {tuple(np.shape(a))}", style="bold"), width, indent=2))
    text.append("\n")
    text.append(wrap(Text(f"A: {a_label}   B: {b_label}   shown: B - A"), width, indent=2))
    text.append("\n")
    text.append(wrap(stats_line(stats, style), width, indent=2))
    text.append("\n")
    change = as_rows(np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64))
    rows, cols = change.shape
    room = (width or 78) - 1 - (len(str(min(rows, MOST_ROWS))) + 1 if rows > 1 else 0)
    cell = 2 if 2 * cols <= room else 1
    shown = change[:MOST_ROWS, : max(1, room // cell)]
    if shown.shape != change.shape:
        text.append(f"showing rows 1-{shown.shape[0]} of {rows}, columns 1-{shown.shape[1]} "
                    f"of {cols}\n", style="dim")
    scale = Scale.zero_centred(change, scope="over this change")
    labels = [str(i + 1) for i in range(shown.shape[0])] if rows > 1 else None  # from 1
    text.append(render.heatmap(shown, labels, None, None, style, cell=cell, scale=scale,
                               legend_width=width))
    return text
