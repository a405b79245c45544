"""The tensor view: any named tensor of the current event, or its gradient.

Header: the event's tensors with the shown one bracketed, value/gradient, the slice shown of a
3-D or 4-D tensor; then shape, dtype and statistics, wrapped to the panel's width; then the
values as a shaded heatmap with token labels (or, on demand, as numbers): softmax outputs on
the fixed 0..1 scale, everything else centred on zero; an axis over the vocabulary is labelled
with its tokens, written downwards.
"""
from __future__ import annotations

from rich.text import Text

from .. import render
from ..style import Style
from ..wrap import wrap
from .panel import TextPanel


class TensorView(TextPanel):
    def render_view(self, session, style: Style) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        width = self.text_width
        shown = session.shown_tensor()
        names = Text()
        for name in session.tensor_names():
            if name == session.view.tensor:
                names.append(f"[{name}]", style="bold reverse" if style.color else "bold")
            else:
                names.append(f" {name} ")
        text.append(wrap(names, width))
        text.append("\n")
        if shown is None:
            text.append("this event recorded no tensors")
            return text
        event, name = shown
        other = session.counterpart()
        values, rows, cols, where = session.tensor_slice(event, name)
        if session.view.gradient and other is not None:
            side = f"{name} {where} of event {event.index + 1}"
        elif other is not None:
            side = f"{name} {where}  (G: {other[1]}, event {other[0].index + 1})"
        else:
            side = f"{name} {where}  (no {'gradient' if event.phase == 'forward' else 'value'} pair)"
        text.append(wrap(Text(side, style="dim"), width, indent=2))
        text.append("\n")
        text.append(render.stats_text(session.trace.stats(event.index, name), style,
                                      self.text_width))
        text.append("\n")
        keep = None
        if name in ("weights", "masked") and "keep" in event.tensors:
            amap = session.attention_map(stage="weights")
            keep = amap.keep if amap is not None and amap.keep is not None and \
                amap.keep.shape == values.shape else None
        if session.view.numbers:
            text.append(render.number_grid(values, rows, cols, keep, style,
                                           max_width=width))
        else:
            scale = session.tensor_scale(event, name, values, keep)
            vocab = cols is not None and cols == session.vocab_labels()
            text.append(render.heatmap(values, rows, cols, keep, style, scale=scale,
                                       labels_down=vocab, legend_width=width))
        return text
