"""Small views: the positional encoding, the embeddings, gradient norms."""
from __future__ import annotations

import numpy as np
from rich.text import Text

from engine.trace.attention_stats import cosine_matrix

from .. import render
from ..render import fit_label, short_number
from ..style import Style
from ..shading import ZERO_CENTRED, Scale
from ..wrap import wrap
from .panel import TextPanel


SIMILAR_POSITIONS = 12  # the similarity matrix shows at least this many positions


class PositionalView(TextPanel):
    """The positional vectors: how alike each two positions' vectors are (cosine; numbers with
    v), what adding them does to this input's token embeddings, and the vectors themselves
    (positions down, model dimensions across: low dimensions turn fast, high ones slowly, so
    each position gets its own pattern)."""

    def render_view(self, session, style: Style) -> Text:
        length = max(len(session.trace.tgt_tokens[0]), len(session.trace.src_tokens[0])
                     if session.trace.src_tokens else 0, 16)
        table, what = session.positional_table(length)
        text = Text(no_wrap=True, overflow="crop")
        width = self.text_width
        text.append(wrap(Text(what, style="bold"), width, indent=2))
        text.append("\n")
        n = min(len(table), max(SIMILAR_POSITIONS, len(session.trace.tgt_tokens[0])))
        labels = [str(p + 1) for p in range(n)]
        text.append(wrap(Text(f"cosine similarity of the vectors of positions 1-{n} (v: "
                              f"numbers)", style="bold"), width, indent=2))
        text.append("\n")
        cos = cosine_matrix(table[:n])
        if session.view.numbers:
            text.append(render.number_grid(cos, labels, labels, style=style, width=5,
                                           max_width=width))
        else:
            text.append(render.heatmap(cos, labels, labels, None, style,
                                       scale=Scale(ZERO_CENTRED, 1.0, "fixed (cosine)"),
                                       legend_width=width))
        sums = session.position_sums()
        if sums is not None:
            text.append("\n\n")
            text.append(self._sums(*sums, style, width))
        text.append("\n\n")
        text.append(wrap(Text("the position vectors: positions down from 1 (p = row-1), dims "
                              "across", style="bold"), width, indent=2))
        text.append("\n")
        rows = [str(p + 1) for p in range(table.shape[0])]
        text.append(render.heatmap(table, rows, None, None, style, cell=1, legend_width=width))
        return text

    @staticmethod
    def _sums(x, pe, out, tokens, style: Style, width: int | None) -> Text:
        """Per position of the input: |token embedding|, |position vector|, |their sum| and
        how far the sum turned from the token's vector (cosine)."""
        text = Text(no_wrap=True, overflow="crop")
        text.append(wrap(Text("token embedding + position vector = the sum the first block "
                              "reads", style="bold"), width, indent=2))
        text.append("\n")
        head = f"{'pos':>4} {'token':<5} {'|token|':>7} {'|pos|':>7} {'|sum|':>7} {'cos':>6}"
        text.append(wrap(Text(head, style="bold"), width, indent=2))
        for p in range(x.shape[0]):
            cos = float(cosine_matrix(np.stack([x[p], out[p]]))[0, 1])
            line = (f"{p + 1:>4} {fit_label(tokens[p], 5, style):<5} "
                    f"{short_number(float(np.linalg.norm(x[p]))):>7} "
                    f"{short_number(float(np.linalg.norm(pe[p]))):>7} "
                    f"{short_number(float(np.linalg.norm(out[p]))):>7} {cos:>6.3f}")
            text.append("\n")
            text.append(wrap(line, width, indent=2))
        text.append("\n")
        text.append(wrap(Text("cos: cosine of token and sum (1: the position changed nothing)",
                              style="dim"), width, indent=2))
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
