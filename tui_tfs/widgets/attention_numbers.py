"""Views of attention as numbers: what 1/sqrt(d_k) changes (K), and one row under several
softmax temperatures (T). Tables are laid out to at most 42 columns, so the whole of each line
reads in the explorer's right column at 80x23 and beside the lesson pane; narrower, each line
wraps between numbers, never inside one.
"""
from __future__ import annotations

import math

from rich.text import Text

from .. import render
from ..render import fit_label, short_number
from ..style import Style
from ..wrap import wrap
from .attention_map import _layer_title
from .panel import TextPanel


def _line(text: Text, line: str | Text, width: int | None, style: str = "") -> None:
    text.append(wrap(Text(line, style=style) if isinstance(line, str) else line, width, 2))
    text.append("\n")


class ScalingView(TextPanel):
    """Per query row of the current head: the softmax's entropy and largest weight with the
    1/sqrt(d_k) scale and without it; the spread of the scores; and how that spread, entropy
    and largest weight go as d_k grows, for random q, k with this head's own statistics."""

    def render_view(self, session, style: Style) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        h = session.scaling()
        if h is None:
            text.append("this model has no attention layers")
            return text
        width = self.text_width
        amap = session.attention_map(h.path, "scores")
        heads = session.model.config.n_heads
        scale = 1.0 / math.sqrt(h.width)
        _line(text, _layer_title(amap), width, "bold")
        _line(text, f"head {h.head + 1}/{heads}, d_k = {h.width}, scaled = scores x "
                    f"1/sqrt(d_k) = x {scale:.4f}  (h/H head, y/Y layer)", width, "dim")
        rows = h.rows
        _line(text, "softmax of each query row, scaled vs raw", width, "bold")
        _line(text, f"{'row':>4} {'token':<5} {'entropy':>13}  {'top weight':>13}", width, "bold")
        _line(text, f"{'':>4} {'':<5} {'scaled':>6} {'raw':>6}  {'scaled':>6} {'raw':>6}", width,
              "bold")
        for r in range(len(rows.entropy_raw)):
            token = fit_label(h.query_tokens[r], 5, style)
            _line(text, f"{r + 1:>4} {token:<5} {rows.entropy_scaled[r]:>6.3f} "
                        f"{rows.entropy_raw[r]:>6.3f}  {rows.top_scaled[r]:>6.3f} "
                        f"{rows.top_raw[r]:>6.3f}", width)
        keys = sorted(set(int(n) for n in rows.visible))
        uniform = ", ".join(f"{math.log(max(n, 1)):.3f} ({n} keys)" for n in keys)
        _line(text, f"uniform: entropy {uniform}; one key: entropy 0, top 1", width, "dim")
        _line(text, f"score spread (std) over the map: scaled {short_number(rows.std_scaled)}, "
                    f"raw {short_number(rows.std_raw)}", width)
        text.append("\n")
        _line(text, f"as d_k grows: random q, k with this head's spreads (q {h.sigma_q:.3f}, k "
                    f"{h.sigma_k:.3f}), rows of {h.n_keys} keys; * this head", width, "bold")
        _line(text, f"{'d_k':>4} {'std of scores':>17} {'mean entropy':>13}  {'top':>5}", width,
              "bold")
        _line(text, f"{'':>4} {'raw':>8} {'scaled':>8} {'raw':>6} {'scaled':>6}  {'raw':>5}",
              width, "bold")
        for w in h.spread():
            mark = "*" if w.width == h.width else " "
            _line(text, f"{w.width:>3}{mark} {short_number(w.std_raw):>8} "
                        f"{short_number(w.std_scaled):>8} {w.entropy_raw:>6.3f} "
                        f"{w.entropy_scaled:>6.3f}  {w.top_raw:>5.3f}", width)
        text.rstrip()
        return text


class TemperatureView(TextPanel):
    """One attention row of the current map under several temperatures: a shaded row with its
    entropy and largest weight per temperature, all on one screen at 80x23. The row is the one
    chosen (j/J, a lesson's query), else one that is neither uniform nor saturated."""

    def render_view(self, session, style: Style) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        amap = session.attention_map(stage="masked")
        if amap is None:
            text.append("this model has no attention layers")
            return text
        q = session.temperature_row()
        keep = None if amap.keep is None else amap.keep[q]
        width = self.text_width
        how = "chosen" if session.view.query_chosen else "neither flat nor peaked"
        token = fit_label(amap.rows[q], 8, style)
        _line(text, Text(f"{amap.path} head {amap.head + 1}", style="dim"), width)
        _line(text, Text(f"row {q + 1} ({token}): {how}; j/J row, +/- T", style="dim"), width)
        text.append(render.temperature_table(amap.values[q], keep, amap.cols, style,
                                             current=session.view.temperature, width=width))
        return text

