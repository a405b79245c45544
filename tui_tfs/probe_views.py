"""What the scrubber draws, as Rich text (no Textual): the probe's attention at one snapshot
(one head, or every layer x head), the timeline of snapshots, and the heatmaps over training
time (gradient norm per layer, attention entropy per head).

The maps are the explorer's: `render.heatmap` on the fixed 0..1 probability scale, query
tokens down, key tokens across, so a map at step 100 and at step 1500 read on the same scale.
"""
from __future__ import annotations

import math

from rich.text import Text

from engine.training.probe import ProbeFrame

from . import render
from .probe_watch import ProbeWatch, grad_norms_over_time
from .shading import Scale
from .style import Style
from .time_heatmap import heads_over_time, layers_over_time, short_layer
from .wrap import wrap


def layer_kind(frame: ProbeFrame, layer: str) -> str:
    return "cross-attention" if layer in frame.cross else "self-attention"


def timeline(steps: list[int], at: int, width: int, style: Style) -> Text:
    """One line: a mark per probed step (squeezed to fit), the current one highlighted:
    'snapshots |....#.....| step 250 of 1500'."""
    text = Text(no_wrap=True, overflow="crop")
    n = len(steps)
    room = max(4, width - 2)
    cells = min(n, room)
    here = 0 if n <= 1 else round(at * (cells - 1) / (n - 1))
    dot, mark = (".", "#") if style.ascii else ("·", "●")
    text.append("|" if style.ascii else "├", style="dim")
    for c in range(cells):
        text.append(mark if c == here else dot, style="bold reverse" if c == here else "dim")
    text.append("|" if style.ascii else "┤", style="dim")
    return text


def frame_header(watch: ProbeWatch, index: int, train_loss: float | None, style: Style,
                 width: int | None) -> Text:
    """'step 250 (snapshot 11 of 61)  training loss 0.812  probe loss 0.530' and the probe."""
    frame = watch.frames[index]
    count = len(watch.frames)
    loss = "training loss " + (f"{train_loss:.4g}" if train_loss is not None else "-")
    if frame.step == 0:
        loss = "before training"
    head = Text(f"step {frame.step} (snapshot {index + 1} of {count})  {loss}  probe loss "
                f"{frame.loss:.4g}", style="bold")
    probe = Text(f"probe: {watch.text!r}", style="dim")
    return wrap(head, width, indent=2) + Text("\n") + wrap(probe, width, indent=2)


def one_map(watch: ProbeWatch, frame: ProbeFrame, layer: str, head: int, style: Style,
            width: int | None) -> Text:
    """One head's softmax weights, tokens down and across, on the fixed 0..1 scale."""
    heads = frame.attention[layer].shape[0]
    rows, cols = watch.labels(frame, layer)
    text = Text(no_wrap=True, overflow="crop")
    text.append(wrap(Text(f"{layer} ({layer_kind(frame, layer)}) head {head + 1}/{heads}",
                          style="bold"), width, indent=2))
    text.append("\nqueries down, keys across\n", style="dim")
    values = frame.attention[layer][head]  # (T, S)
    text.append(render.heatmap(values, rows, cols, None, style,
                               scale=Scale.probability("softmax weights"), legend_width=width))
    return text


def overview(frame: ProbeFrame, current: str, style: Style, width: int | None) -> Text:
    """Every layer x head at this snapshot, one glyph a cell; layers side by side as the
    width allows, heads left to right inside each layer."""
    text = Text(no_wrap=True, overflow="crop")
    scale = Scale.probability("every map")
    text.append(wrap(scale.legend(style), width, indent=2))
    text.append("\n")
    width = width or 80
    blocks = []
    for layer in frame.layers:
        maps = frame.attention[layer]  # (H, T, S)
        rendered = [render.heatmap(m, None, None, None, style, cell=1, scale=scale,
                                   legend=False).plain.split("\n") for m in maps]
        map_w = maps.shape[2]
        lines = [" ".join(r[i] for r in rendered) for i in range(maps.shape[1])]
        block_w = max(len(lines[0]), 10)
        mark = (">" if style.ascii else "▶") if layer == current else " "
        label = mark + short_layer(layer)
        heads = " ".join(f"h{h + 1}".ljust(map_w) for h in range(maps.shape[0]))
        blocks.append(([label.ljust(block_w)[:block_w], heads.ljust(block_w)[:block_w]]
                       + [line.ljust(block_w) for line in lines], block_w))
    gap = 3
    row: list = []
    used = 0
    groups = []
    for block in blocks:
        if row and used + gap + block[1] > width:
            groups.append(row)
            row, used = [], 0
        row.append(block)
        used += block[1] + (gap if len(row) > 1 else 0)
    if row:
        groups.append(row)
    for group in groups:
        height = max(len(b[0]) for b in group)
        for i in range(height):
            line = (" " * gap).join(b[0][i] if i < len(b[0]) else " " * b[1] for b in group)
            text.append(line.rstrip() + "\n", style="bold" if i == 0 else "")
    text.rstrip()
    return text


def over_time(controller, watch: ProbeWatch, style: Style, width: int | None) -> Text:
    """The gradient norm per layer at every step, and the probe's attention entropy per head
    at every snapshot, as heatmaps (steps across)."""
    width = width or 78
    groups, steps, norms = grad_norms_over_time(controller)
    text = layers_over_time("gradient norm per layer (before clipping)",
                            [short_layer(g) for g in groups], steps, norms, width, style, log=True)
    text.append("\n")
    frames = list(watch.frames)
    f_steps, table = watch.entropy_over_time()
    longest = max(m.shape[-1] for m in frames[-1].attention.values())
    text.append_text(heads_over_time(
        "attention entropy per head (nats; 0: one key, high: spread evenly)",
        [short_layer(layer) for layer in frames[-1].layers], f_steps, table, width, style,
        0.0, math.log(longest)))
    return text


def train_loss_at(controller, step: int) -> float | None:
    """The training loss of step `step` (None before training or if not in the history)."""
    history = controller.history
    lo, hi = 0, len(history)
    while lo < hi:  # steps increase along the history (a rewound run's too, after truncation)
        mid = (lo + hi) // 2
        if history[mid].step < step:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(history) and history[lo].step == step:
        return float(history[lo].loss)
    return None


def head_count(frame: ProbeFrame) -> int:
    return int(next(iter(frame.attention.values())).shape[0]) if frame.attention else 0
