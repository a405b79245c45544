"""Attention maps: one head at one stage, and the overview of every layer x head.

Query tokens run down the side, key tokens across the top. Stages: scores (Q Kᵀ), scaled
(/ sqrt(d_k)), masked (future and padding keys filled), softmax weights. Masked cells are drawn
with their own glyph ('×', or 'x' in ASCII), never with a shade, so they cannot be mistaken for
small weights.
"""
from __future__ import annotations

from rich.text import Text

from engine.maths.facts import CROSS_ATTENTION

from .. import render
from ..render import fit_label
from ..style import Style
from ..shading import ZERO_CENTRED, Scale
from ..wrap import wrap
from .panel import TextPanel


def _layer_title(amap) -> str:
    """"decoder.blocks.0.cross_attn (cross-attention)", as the layer's facts say."""
    kind = "cross-attention" if amap.facts.attention == CROSS_ATTENTION else "self-attention"
    return f"{amap.path} ({kind})"


class AttentionView(TextPanel):
    def render_view(self, session, style: Style) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        amap = session.attention_map()
        if amap is None:
            text.append("this model has no attention layers")
            return text
        v = session.view
        heads = session.model.config.n_heads
        width = self.text_width
        text.append(wrap(Text(_layer_title(amap), style="bold"), width, indent=2))
        stages = "  ".join(f"[{s}]" if s == amap.stage else s for s in ("scores", "scaled",
                                                                        "masked", "weights"))
        item = f"item {amap.batch + 1}/{session.batch_size} " if session.batch_size > 1 else ""
        text.append("\n")
        text.append(wrap(Text(f"head {amap.head + 1}/{heads} {item}| {stages}", style="dim"),
                         width, indent=2))
        text.append("\n")
        text.append("queries down, keys across\n", style="dim")
        keep = amap.keep if amap.stage in ("masked", "weights") else None
        if v.numbers:
            text.append(render.number_grid(amap.values, amap.rows, amap.cols, keep, style,
                                           max_width=width))
        else:
            text.append(render.heatmap(amap.values, amap.rows, amap.cols, keep, style,
                                       scale=session.attention_scale(amap), legend_width=width,
                                       cell=self.cell_width(amap.cols, amap.rows)))
        return text

    def cell_width(self, cols: list[str] | None, rows: list[str] | None) -> int | None:
        """None (the map's own choice), or on a large terminal cells as wide as the panel
        allows, up to 8 columns: a map a class can read on a projector."""
        width = self.text_width
        if not getattr(self.app, "large", False) or not cols or width is None:
            return None
        label_w = min(8, max((len(r) for r in rows or []), default=0))
        return max(2, min(8, (width - label_w - 1) // len(cols)))


class AttentionOverview(TextPanel):
    """Every attention layer (rows) x every head (columns), one glyph a cell; query tokens down
    the side of each layer's maps, key tokens across their top (one character each, the keys in
    full above when one is longer)."""

    def render_view(self, session, style: Style) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        paths = session.trace.attention_paths
        heads = session.model.config.n_heads
        stage = session.view.stage
        item = min(session.view.item, session.batch_size - 1)
        width = self.text_width
        head = wrap(Text(f"all layers x heads, stage {stage}, item {item + 1}/"
                         f"{session.batch_size}", style="bold"), width, indent=2) + Text("\n")
        current = session.attention_layer()
        scales, masked = [], False
        for path in paths:
            maps = [session.attention_map(path, stage, h) for h in range(heads)]
            map_w = maps[0].values.shape[1]
            rows, cols = maps[0].rows, maps[0].cols
            label_w = min(MAX_OVERVIEW_LABEL, max((len(r) for r in rows), default=0))
            lead = " " * (label_w + 1)
            # as many heads side by side as the panel holds; the rest on the rows below
            per_row = heads if width is None else max(
                1, min(heads, (width - label_w - 1) // (map_w + 2)))
            mark = (">" if style.ascii else "▶") if path == current else " "
            text.append(f"{mark}{path}\n", style="bold" if path == current else "")
            if any(len(c) > 1 for c in cols):  # one glyph per key: the keys in full first
                text.append(wrap(Text("keys: " + " ".join(
                    fit_label(c, MAX_OVERVIEW_LABEL, style) for c in cols), style="dim"),
                    width, indent=2))
                text.append("\n")
            blocks = []
            for amap in maps:
                keep = amap.keep if stage in ("masked", "weights") else None
                masked = masked or (keep is not None and not keep.all())
                scale = session.attention_scale(amap)
                scales.append(scale)
                block = render.heatmap(amap.values, None, None, keep, style, cell=1,
                                       scale=scale, legend=False)
                blocks.append(block.split("\n"))
            key_line = "".join(fit_label(c, 1, style) for c in cols)
            for first in range(0, heads, per_row):
                shown = range(first, min(heads, first + per_row))
                text.append(lead + "".join(f"h{h + 1}".ljust(map_w + 2) for h in shown).rstrip()
                            + "\n", style="dim")
                text.append(lead + "".join(key_line.ljust(map_w + 2) for _ in shown).rstrip()
                            + "\n", style="bold")
                for r in range(maps[0].values.shape[0]):
                    text.append(fit_label(rows[r], label_w, style).rjust(label_w) + " ",
                                style="bold")
                    for h in shown:
                        text.append(blocks[h][r])
                        text.append("  ")
                    text.append("\n")
        text.rstrip()
        # the legend under the title: every map's glyphs are read against it
        legend = wrap(overview_scale(scales).legend(style, masked=masked), width, indent=2)
        return head + legend + Text("\n") + text


MAX_OVERVIEW_LABEL = 5  # query tokens down the side of the overview's maps, cut to this


def overview_scale(scales: list[Scale]) -> Scale:
    """One legend for the overview's maps: their scale when they share one (probabilities,
    or the shared option), else zero-centred, each map over its own range (from .. to)."""
    if len(set(scales)) <= 1:
        return scales[0] if scales else Scale()
    limits = [s.limit for s in scales if s.kind == ZERO_CENTRED]
    return Scale(ZERO_CENTRED, max(limits), "each map its own",
                 spread=(min(limits), max(limits)))


