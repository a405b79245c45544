"""Small views: the positional encoding, the embeddings, softmax temperature, gradient norms."""
from __future__ import annotations

import numpy as np
from rich.text import Text

from .. import render
from ..style import Style
from ..shading import ZERO_CENTRED, Scale
from ..wrap import wrap
from .panel import TextPanel


class PositionalView(TextPanel):
    """The positional vectors: positions down, model dimensions across. Low dimensions turn
    fast (stripes), high ones slowly (broad bands): each position gets its own pattern."""

    def render_view(self, session, style: Style) -> Text:
        length = max(len(session.trace.tgt_tokens[0]), len(session.trace.src_tokens[0])
                     if session.trace.src_tokens else 0, 16)
        table, what = session.positional_table(length)
        text = Text(no_wrap=True, overflow="crop")
        width = self.text_width
        text.append(wrap(Text(what, style="bold"), width, indent=2))
        text.append("\n")
        text.append(wrap(Text("positions down from 1 (p = row-1), dims across", style="dim"),
                         width, indent=2))
        text.append("\n")
        rows = [str(p + 1) for p in range(table.shape[0])]
        text.append(render.heatmap(table, rows, None, None, style, cell=1, legend_width=width))
        return text


class EmbeddingView(TextPanel):
    """The token embedding table: one row per vocabulary token, dimensions across, plus each
    row's norm; with the similarity (cosine) of the tokens of this input to each other."""

    def render_view(self, session, style: Style) -> Text:
        table, vocab, name = session.embedding_table()
        text = Text(no_wrap=True, overflow="crop")
        width = self.text_width
        text.append(wrap(Text(f"{name}  ({table.shape[0]} tokens x {table.shape[1]} dims)",
                              style="bold"), width, indent=2))
        text.append("\n")
        text.append(render.heatmap(table, vocab, None, None, style, cell=1, legend_width=width))
        norms = np.linalg.norm(table.astype(np.float64), axis=1)
        unit = table / np.maximum(norms[:, None], 1e-12)
        cos = unit @ unit.T
        text.append("\n\ncosine similarity of token embeddings\n", style="bold")
        text.append(render.heatmap(cos, vocab, vocab, None, style,
                                   scale=Scale(ZERO_CENTRED, 1.0, "fixed (cosine)"),
                                   legend_width=width))
        return text


class TemperatureView(TextPanel):
    """One attention row (the chosen query of the current map) under several temperatures."""

    def render_view(self, session, style: Style) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        amap = session.attention_map(stage="masked")
        if amap is None:
            text.append("this model has no attention layers")
            return text
        q = min(session.view.query, amap.values.shape[0] - 1)
        keep = None if amap.keep is None else amap.keep[q]
        width = self.text_width
        # the path on a line of its own, so "query row 2" is never broken by the wrap
        text.append(wrap(Text(amap.path, style="dim"), width, indent=2))
        text.append("\n")
        text.append(wrap(Text(f"head {amap.head + 1}, query row {q + 1} "
                              f"(j/J row, +/- temperature)", style="dim"), width, indent=2))
        text.append("\n")
        text.append(render.temperature_table(amap.values[q], keep, amap.cols, amap.rows[q], style,
                                             current=session.view.temperature, width=width))
        return text


class GradNormView(TextPanel):
    """Per-layer norms of the parameter gradients, filled in as the backward pass reaches them."""

    def render_view(self, session, style: Style) -> Text:
        norms = session.grad_norms()
        text = Text(no_wrap=True, overflow="crop")
        reached = sum(n.norm is not None for n in norms)
        width = self.text_width
        text.append(wrap(Text(f"parameter-gradient norm per layer (log bars), "
                              f"{reached}/{len(norms)} computed", style="bold"), width, indent=2))
        text.append("\n")
        if session.event.phase == "forward":
            text.append(wrap(Text("forward phase: no gradients yet; b runs to the first "
                                  "backward event", style="dim"), width, indent=2))
            text.append("\n")
        labels = [n.path for n in norms]
        label_w, bar_w = render.bars_layout(labels, self.text_width)
        text.append(render.bars(labels, [n.norm for n in norms], style, width=bar_w,
                                label_w=label_w))
        return text
