"""Heatmaps over training time, in characters: one row per layer (or per layer's head strip),
one column per stretch of steps, each cell shaded by its value on a sequential ramp.

    gradient norm per layer, log scale: 3e-4 ▁▂▃▄▅▆▇█ 2.1, each column the mean of 6 steps
    enc1      ▇▇▆▅▄▄▃▃▃▂▂▂▂▂▁▁
    ...
              step 1                                 step 1500

Steps are columns so that time reads left to right as on the loss plot. When there are more
steps than columns, a column is the mean of a run of neighbouring steps (np.array_split: runs
differ in length by at most one), and the legend says how many.

Shapes: R rows, N steps (or probe frames), C columns drawn (C <= N).
"""
from __future__ import annotations

import math

import numpy as np
from rich.text import Text

from .render import fit_label
from .shading import PROBABILITY_RAMP, Scale, short
from .style import Style

NAN_CELL = "?"


def short_layer(path: str) -> str:
    """A layer's or group's dotted path in a few characters, counting blocks from 1:
    "encoder.blocks.0.self_attn" -> "enc1 self", "decoder.blocks.1.cross_attn" -> "dec2 cross",
    "blocks.0" -> "blk1", "encoder.tok_emb" -> "enc emb", "lm_head" -> "lm_head"."""
    parts = path.split(".")
    side = {"encoder": "enc", "decoder": "dec"}.get(parts[0], "")
    rest = parts[1:] if side else parts
    words = []
    if len(rest) >= 2 and rest[0] == "blocks" and rest[1].isdigit():
        words.append(f"{side or 'blk'}{int(rest[1]) + 1}")
        rest = rest[2:]
    elif side:
        words.append(side)
    for part in rest:
        words.append({"self_attn": "self", "cross_attn": "cross", "tok_emb": "emb"}.get(part, part))
    return " ".join(words)


def bin_columns(values: np.ndarray, columns: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """values (R, N) -> (R, C) means over runs of neighbouring columns, C = min(N, columns),
    and the runs' column indices. NaN cells are left out of a mean (all NaN: NaN)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[1]
    runs = np.array_split(np.arange(n), max(1, min(n, columns))) if n else []
    out = np.full((values.shape[0], len(runs)), np.nan)
    for c, run in enumerate(runs):
        block = values[:, run]
        finite = np.isfinite(block)
        counts = finite.sum(axis=1)
        sums = np.where(finite, block, 0.0).sum(axis=1)
        out[:, c] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return out, runs


def levels(values: np.ndarray, log: bool, lo: float | None = None,
           hi: float | None = None) -> tuple[np.ndarray, float, float]:
    """Each finite value's place 0..1 between lo and hi (log10 when `log`; lo and hi default
    to the finite extremes), and (lo, hi) in the values' own units. NaN stays NaN."""
    v = np.asarray(values, dtype=np.float64)
    shown = np.where(v > 0, v, np.nan) if log else v
    finite = shown[np.isfinite(shown)]
    lo = float(finite.min()) if lo is None and finite.size else (lo if lo is not None else 0.0)
    hi = float(finite.max()) if hi is None and finite.size else (hi if hi is not None else 1.0)
    f = (lambda x: np.log10(x)) if log else (lambda x: x)
    with np.errstate(divide="ignore", invalid="ignore"):
        span = f(hi) - f(lo) if hi > lo else 0.0
        place = (f(shown) - f(lo)) / span if span > 0 else np.where(np.isfinite(shown), 1.0, np.nan)
    return np.clip(place, 0.0, 1.0), lo, hi


def cell_glyph(level: float, style: Style) -> tuple[str, str]:
    """(glyph, colour) of a level 0..1: eight steps, the lowest still a visible mark (a
    value is never drawn blank like a missing one)."""
    if not math.isfinite(level):
        return NAN_CELL, "magenta"
    n = 1 + int(round(level * 7))  # 1..8
    ramp = PROBABILITY_RAMP[style.ascii]
    return ramp[n], Scale.probability().color(n / 8) if style.color else ""


def ramp_legend(lo: float, hi: float, style: Style) -> Text:
    """'3e-4 ▁▂▃▄▅▆▇█ 2.1' with the glyphs in their colours."""
    text = Text(no_wrap=True, overflow="crop")
    text.append(short(lo) + " ")
    for n in range(1, 9):
        glyph, color = cell_glyph((n - 1) / 7, style)
        text.append(glyph, style=color)
    text.append(" " + short(hi))
    return text


def strip(levels_row: np.ndarray, style: Style) -> Text:
    text = Text(no_wrap=True, overflow="crop")
    for level in levels_row:
        glyph, color = cell_glyph(float(level), style)
        text.append(glyph, style=color)
    return text


def step_axis(first: int, last: int, width: int, indent: int) -> Text:
    """'step 1 ... step 1500' under a strip of `width` columns starting at `indent`."""
    left, right = f"step {first}", f"{last}"
    if width < len(left) + len(right) + 1:
        left, right = f"{first}", f"{last}"
    gap = max(1, width - len(left) - len(right))
    return Text(" " * indent + left + " " * gap + right, style="dim", no_wrap=True)


def layers_over_time(title: str, labels: list[str], steps: np.ndarray, values: np.ndarray,
                     width: int, style: Style, log: bool = True) -> Text:
    """One row per label (values (R, N) at `steps` (N,)): gradient norms per layer."""
    text = Text(no_wrap=True, overflow="crop")
    text.append(title + "\n", style="bold")
    if values.size == 0 or values.shape[1] == 0:
        text.append("no steps yet: space starts training", style="dim")
        return text
    label_w = min(10, max(len(l) for l in labels))
    columns = max(4, width - label_w - 1)
    binned, runs = bin_columns(values, columns)
    place, lo, hi = levels(binned, log)
    text.append("log scale: " if log else "", style="dim")
    text.append_text(ramp_legend(lo, hi, style))
    text.append(_per_column(runs, "step"), style="dim")
    text.append("\n")
    for label, row in zip(labels, place):
        text.append(fit_label(label, label_w, style).rjust(label_w) + " ", style="bold")
        text.append_text(strip(row, style))
        text.append("\n")
    text.append_text(step_axis(int(steps[0]), int(steps[-1]), binned.shape[1], label_w + 1))
    return text


def heads_over_time(title: str, labels: list[str], steps: np.ndarray, values: np.ndarray,
                    width: int, style: Style, lo: float, hi: float) -> Text:
    """values (F, L, H) at `steps` (F,): one row per layer, a strip per head side by side,
    on one fixed scale lo..hi (attention entropy: 0 .. ln of the longest key row)."""
    text = Text(no_wrap=True, overflow="crop")
    text.append(title + "\n", style="bold")
    n_frames, n_layers, heads = values.shape
    label_w = min(10, max(len(l) for l in labels))
    per_head = max(3, (width - label_w - 1) // heads - 1)
    binned = [bin_columns(values[:, :, h].T, per_head) for h in range(heads)]  # (L, C) each
    runs = binned[0][1]
    text.append_text(ramp_legend(lo, hi, style))
    text.append(_per_column(runs, "probe"), style="dim")
    text.append("\n")
    cols = binned[0][0].shape[1]
    text.append(" " * (label_w + 1) + "".join(f"h{h + 1}".ljust(cols + 1) for h in range(heads))
                .rstrip() + "\n", style="dim")
    for i, label in enumerate(labels):
        text.append(fit_label(label, label_w, style).rjust(label_w) + " ", style="bold")
        for h in range(heads):
            place, _, _ = levels(binned[h][0][i:i + 1], log=False, lo=lo, hi=hi)
            text.append_text(strip(place[0], style))
            text.append(" ")
        text.append("\n")
    text.append_text(step_axis(int(steps[0]), int(steps[-1]), cols, label_w + 1))
    return text


def _per_column(runs: list[np.ndarray], what: str) -> str:
    longest = max((len(r) for r in runs), default=1)
    if longest <= 1:
        return f"  (a column per {what})"
    return f"  (a column: mean of up to {longest} {what}s)"
