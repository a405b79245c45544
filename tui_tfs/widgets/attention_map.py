"""Attention maps: one head at one stage, and the overview of every layer x head.

Query tokens run down the side, key tokens across the top. Stages: scores (Q Kᵀ), scaled
(/ sqrt(d_k)), masked (future and padding keys filled), softmax weights. Masked cells are drawn
with their own glyph ('×', or 'x' in ASCII), never with a shade, so they cannot be mistaken for
small weights.
"""
from __future__ import annotations

from rich.text import Text

from .. import render
from ..render import Style
from ..shading import ZERO_CENTRED, Scale
from .panel import TextPanel


def _layer_title(path: str) -> str:
    kind = "cross-attention" if path.endswith("cross_attn") else "self-attention"
    return f"{path} ({kind})"


class AttentionView(TextPanel):
    def render_view(self, session, style: Style) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        amap = session.attention_map()
        if amap is None:
            text.append("this model has no attention layers")
            return text
        v = session.view
        heads = session.model.config.n_heads
        text.append(_layer_title(amap.path) + "\n", style="bold")
        stages = "  ".join(f"[{s}]" if s == amap.stage else s for s in ("scores", "scaled",
                                                                        "masked", "weights"))
        item = f"item {amap.batch + 1}/{session.batch_size} " if session.batch_size > 1 else ""
        text.append(f"head {amap.head + 1}/{heads} {item}| {stages}\n", style="dim")
        text.append("queries down, keys across\n", style="dim")
        keep = amap.keep if amap.stage in ("masked", "weights") else None
        if v.numbers:
            text.append(render.number_grid(amap.values, amap.rows, amap.cols, keep, style))
        else:
            text.append(render.heatmap(amap.values, amap.rows, amap.cols, keep, style,
                                       scale=session.attention_scale(amap)))
        return text


class AttentionOverview(TextPanel):
    """Every attention layer (rows) x every head (columns), softmax weights, one glyph a cell."""

    def render_view(self, session, style: Style) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        paths = session.trace.attention_paths
        heads = session.model.config.n_heads
        stage = session.view.stage
        item = min(session.view.item, session.batch_size - 1)
        head = Text(f"all layers x heads, stage {stage}, item {item + 1}/{session.batch_size}\n",
                    style="bold")
        current = session.attention_layer()
        scales, masked = [], False
        for path in paths:
            maps = [session.attention_map(path, stage, h) for h in range(heads)]
            width = maps[0].values.shape[1]
            mark = (">" if style.ascii else "▶") if path == current else " "
            text.append(f"{mark}{path}\n", style="bold" if path == current else "")
            text.append("  " + "".join(f"h{h + 1}".ljust(width + 2) for h in range(heads)) + "\n",
                        style="dim")
            blocks = []
            for amap in maps:
                keep = amap.keep if stage in ("masked", "weights") else None
                masked = masked or (keep is not None and not keep.all())
                scale = session.attention_scale(amap)
                scales.append(scale)
                block = render.heatmap(amap.values, None, None, keep, style, cell=1,
                                       scale=scale, legend=False)
                blocks.append(block.split("\n"))
            for r in range(maps[0].values.shape[0]):
                text.append("  ")
                for lines in blocks:
                    text.append(lines[r])
                    text.append("  ")
                text.append("\n")
        text.rstrip()
        # the legend under the title: every map's glyphs are read against it
        return head + overview_scale(scales).legend(style, masked=masked) + Text("\n") + text


def overview_scale(scales: list[Scale]) -> Scale:
    """One legend for the overview's maps: their scale when they share one (probabilities,
    or the shared option), else zero-centred, each map over its own range (from .. to)."""
    if len(set(scales)) <= 1:
        return scales[0] if scales else Scale()
    limits = [s.limit for s in scales if s.kind == ZERO_CENTRED]
    return Scale(ZERO_CENTRED, max(limits), "each map its own",
                 spread=(min(limits), max(limits)))


