"""Pure renderers: NumPy arrays in, Rich `Text` out. No Textual, no terminal.

Every value is carried by a glyph, so a map reads the same without colour (NO_COLOR, 16-colour
terminals) and in ASCII-only mode; colour only adds emphasis on top. A `Scale` (shading.py)
says how values become glyphs; the legend above a map names it and gives both its ends.

    heatmap(values, rows=tokens, cols=tokens, keep=mask, style=Style(ascii=False, color=True),
            scale=Scale.probability())       # default: zero-centred over the visible values
    number_grid(values, rows, cols)          # the numbers behind a map
    stats_text(stats, width=47)               # shape, dtype, min .. Inf, wrapped to the width
    flow(fields, width)                       # short fields in the fewest, evenest lines
    bars(labels, values)                      # per-layer gradient norms
"""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
from rich.text import Text

from .shading import MASKED, Scale, short
from .style import Style
from .wrap import wrap

NAN_GLYPH = "?"
INF_GLYPH = "!"
BAR = {False: "█", True: "#"}
ELLIPSIS = {False: "…", True: "~"}


def model_kind_label(kind: str) -> str:
    """The one name for a model family, shown the same by the picker and the command line:
    a task's kind ("seq2seq"/"lm") or a config's ("encoder_decoder"/"decoder_only")."""
    return "encoder-decoder" if kind in ("seq2seq", "encoder_decoder") else "decoder-only"


def ellipsis_mark(style: Style, width: int) -> str:
    """The mark of cut text: '…', or '...' in ASCII ('~' where a label has under 4 columns)."""
    if not style.ascii:
        return ELLIPSIS[False]
    return "..." if width >= 4 else ELLIPSIS[True]


PRINTABLE = {False: str.maketrans({"\n": "⏎", "\t": "⇥"}),
             True: str.maketrans({"\n": "~", "\t": "~"})}


def fit_label(label: str, width: int, style: Style, keep_end: bool = False) -> str:
    """`label` cut to `width` characters (with an ellipsis mark when cut); `keep_end` cuts the
    start instead, for dotted paths whose end says the most. A newline or tab in a token
    (char-lm's vocabulary) is drawn as a glyph ('~' in ASCII, as the predictions table does),
    so it cannot break a map's row."""
    label = label.translate(PRINTABLE[style.ascii])
    if width <= 0:
        return ""
    if len(label) <= width:
        return label
    if width == 1:
        return label[-1] if keep_end else label[0]
    mark = ellipsis_mark(style, width)
    if keep_end:
        return mark + label[-(width - len(mark)):]
    return label[: width - len(mark)] + mark


def heatmap(values: np.ndarray, rows: list[str] | None = None, cols: list[str] | None = None,
            keep: np.ndarray | None = None, style: Style = Style(), cell: int | None = None,
            scale: Scale | None = None, max_label: int = 8, legend: bool = True,
            labels_down: bool = False, legend_width: int | None = None) -> Text:
    """A 2-D array as shaded cells, row labels down the side and column labels across the top.
    `labels_down` writes each column label downwards (a vocabulary: many columns, some labels
    long), so cells stay two characters wide and every label still reads whole up to
    `max_label` characters.

    `keep` (same shape, bool) marks visible cells; the others are drawn with the masked glyph,
    never with a shade, so a masked cell cannot be mistaken for a small weight. NaN is drawn
    as '?', Inf as '!'. `scale` defaults to zero-centred over the visible finite values; the
    legend (two lines, above the map) names it and gives both its ends; it wraps at
    `legend_width` columns (the map's rows never wrap: they scroll).
    """
    v = np.atleast_2d(np.asarray(values))
    if v.ndim != 2:
        raise ValueError(f"heatmap needs a 1-D or 2-D array, got shape {np.shape(values)}")
    n_rows, n_cols = v.shape
    scale = scale or Scale.zero_centred(v, keep)
    col_labels = cols if cols is not None else None
    if cell is None:
        widest = max((len(c) for c in col_labels), default=1) if col_labels else 1
        cell = (2 if labels_down else max(2, min(widest + 1, 6))) if col_labels else 1
    label_w = min(max_label, max((len(r) for r in rows), default=0)) if rows else 0
    text = Text(no_wrap=True, overflow="crop")
    if legend:  # above the cells: read before them, and on screen however tall the map
        text.append(wrap(scale.legend(style, masked=keep is not None and not keep.all()),
                         legend_width, indent=2))
        text.append("\n")
    indent = " " * (label_w + 1 if label_w else 0)
    if col_labels and labels_down:
        down = [fit_label(label, max_label, style) for label in col_labels]
        height = max(len(label) for label in down)
        for k in range(height):  # labels end on the row above the cells
            text.append(indent)
            for label in down:
                pad = height - len(label)
                text.append((label[k - pad] if k >= pad else " ").ljust(cell), style="bold")
            text.append("\n")
    elif col_labels:
        text.append(indent)
        for label in col_labels:
            text.append(fit_label(label, cell - 1 if cell > 1 else 1, style).ljust(cell),
                        style="bold")
        text.append("\n")
    masked_glyph = MASKED[style.ascii]
    for i in range(n_rows):
        if label_w:
            text.append(fit_label(rows[i], label_w, style).rjust(label_w) + " ", style="bold")
        for j in range(n_cols):
            value = float(v[i, j])
            if keep is not None and not keep[i, j]:
                glyph, color = masked_glyph, "dim"
            elif math.isnan(value):
                glyph, color = NAN_GLYPH, "bold magenta"
            elif math.isinf(value):
                glyph, color = INF_GLYPH, "bold magenta"
            else:
                glyph, color = scale.glyph(value, style), scale.color(value)
            body = glyph * (cell - 1) + " " if cell > 1 else glyph
            text.append(body, style=color if style.color else "")
        if i < n_rows - 1:
            text.append("\n")
    return text


SIG_DIGITS = 3  # the fewest significant digits a number cell shows


def _sci(value: float, decimals: int) -> str:
    """Scientific notation with a short exponent: 3.00e-9, -1.23e12 (no '+', no leading 0)."""
    mantissa, exponent = f"{value:.{decimals}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _candidates(value: float, digits: int = SIG_DIGITS):
    """Spellings of a finite nonzero `value` with at least `digits` significant digits, best
    first: fixed point (3 decimals, or more for small values, fewer for large ones), then
    scientific with up to 4 significant digits."""
    magnitude = abs(value)
    if magnitude >= 1e-3:  # below that fixed point is mostly zeros
        exponent = math.floor(math.log10(magnitude))
        need = max(0, digits - 1 - exponent)  # decimals for `digits` significant digits
        for decimals in range(max(3, need), need - 1, -1):
            yield f"{value:.{decimals}f}"
    for decimals in range(digits, digits - 2, -1):
        yield _sci(value, decimals)


def fmt(value: float, width: int = 7) -> str:
    """A number in `width` characters with at least 3 significant digits when that fits
    (see `cell_width`): fixed point when it fits, else scientific (3.00e-9)."""
    if math.isnan(value):
        return "nan".rjust(width)
    if math.isinf(value):
        return ("inf" if value > 0 else "-inf").rjust(width)
    if value == 0:
        return "0.000".rjust(width) if width >= 5 else "0".rjust(width)
    for s in _candidates(value):
        if len(s) <= width:
            return s.rjust(width)
    for decimals in range(SIG_DIGITS - 2, -1, -1):  # too narrow: fewer digits
        s = _sci(value, decimals)
        if len(s) <= width:
            return s.rjust(width)
    return s


def cell_width(values: np.ndarray, least: int = 7) -> int:
    """The cell width (at least `least`) in which every one of `values` shows 3 significant
    digits: one width for the whole grid, so its columns line up."""
    width = least
    for value in np.asarray(values, dtype=np.float64).ravel():
        if math.isfinite(value) and value != 0:
            width = max(width, min(len(s) for s in _candidates(float(value))))
    return width


def number_grid(values: np.ndarray, rows: list[str] | None = None, cols: list[str] | None = None,
                keep: np.ndarray | None = None, style: Style = Style(), width: int = 7,
                max_label: int = 8, max_width: int | None = None) -> Text:
    """The numbers of a 2-D array, aligned under their column labels; masked cells as the glyph.
    Cells are `width` characters, or wider if a value needs more for 3 significant digits.
    With `max_width`, columns that do not fit go in bands below ('columns 7-12 of 32'), so no
    number is ever cut at the panel's edge."""
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    width = cell_width(v if keep is None else v[np.asarray(keep, dtype=bool)], width)
    label_w = min(max_label, max((len(r) for r in rows), default=0)) if rows else 0
    lead = label_w + 1 if label_w else 0
    n_cols = v.shape[1]
    per_band = n_cols if max_width is None else max(1, (max_width - lead + 1) // (width + 1))
    text = Text(no_wrap=True, overflow="crop")
    for first in range(0, n_cols, per_band):
        band = range(first, min(n_cols, first + per_band))
        if per_band < n_cols:
            if first:
                text.append("\n\n")
            text.append(f"columns {band.start + 1}-{band.stop} of {n_cols}\n", style="dim")
        if cols:
            text.append(" " * lead)
            text.append(" ".join(fit_label(cols[j], width, style).rjust(width) for j in band),
                        style="bold")
            text.append("\n")
        for i in range(v.shape[0]):
            if label_w:
                text.append(fit_label(rows[i], label_w, style).rjust(label_w) + " ", style="bold")
            cells = []
            for j in band:
                if keep is not None and not keep[i, j]:
                    cells.append(MASKED[style.ascii].rjust(width))
                else:
                    cells.append(fmt(float(v[i, j]), width))
            text.append(" ".join(cells))
            if i < v.shape[0] - 1:
                text.append("\n")
    return text


def short_number(value: float) -> str:
    """4 significant digits, the exponent without '+' or leading zeros: 13.76, -1.234e5, 3e-7."""
    return short(value, 4)


def flow(fields: list[Text], width: int | None, gap: int = 2) -> list[Text]:
    """`fields` in order, `gap` spaces apart, in the fewest lines of at most `width` columns,
    split as evenly as they go ("min max" / "mean std", not "min max mean" / "std"). A line
    breaks only between fields; a field wider than `width` gets a line of its own. None: one
    line."""
    separator = Text(" " * gap)
    if not fields or width is None:
        return [separator.join(fields)] if fields else []

    def widest(runs: list[list[Text]]) -> int:
        return max(sum(f.cell_len for f in run) + gap * (len(run) - 1) for run in runs)

    n = len(fields)
    for n_lines in range(1, n):  # a handful of fields: try every way to cut them
        splits = [[list(fields[a:b]) for a, b in zip((0,) + cut, cut + (n,))]
                  for cut in combinations(range(1, n), n_lines - 1)]
        runs = min(splits, key=widest)
        if widest(runs) <= width:
            return [separator.join(run) for run in runs]
    return list(fields)  # one a line


def stats_text(stats, style: Style = Style(), width: int | None = None) -> Text:
    """Shape, dtype, norm, zeros, NaN, Inf; then min, max, mean, std. Two lines when `width`
    columns hold them (or no width is given); else shape and dtype on a line of their own and
    each group wrapped between fields, so every field reads whole in a narrow panel."""
    shape = "(" + ", ".join(str(d) for d in stats.shape) + ")" if stats.shape else "scalar"
    bad = "bold red" if (stats.nan or stats.inf) and style.color else ""
    head = [Text(f"{shape} {stats.dtype}", style="bold")]
    counts = [Text(f"norm {short_number(stats.norm)}"), Text(f"zeros {stats.zeros}"),
              Text(f"NaN {stats.nan}", style=bad), Text(f"Inf {stats.inf}", style=bad)]
    spread = [Text(f"{name} {short_number(value)}") for name, value in
              (("min", stats.min), ("max", stats.max), ("mean", stats.mean), ("std", stats.std))]
    lines = flow(head + counts, width)
    if len(lines) > 1:
        lines = flow(head, width) + flow(counts, width)
    lines += flow(spread, width)
    return Text("\n", no_wrap=True, overflow="crop").join(lines)


def bars(labels: list[str], values: list[float | None], style: Style = Style(),
         width: int = 30, label_w: int = 24, log: bool = True) -> Text:
    """A horizontal bar per label, length by value (log scale by default); None = not yet known.

    The number is printed beside each bar, so the bar is a glance and the number the fact.
    Each line is `label_w + 1 + width + 1 + BAR_VALUE_W` columns at most (`bars_layout`).
    """
    known = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    text = Text(no_wrap=True, overflow="crop")
    if known:
        hi = max(known)
        lo = min(known)
    for i, (label, value) in enumerate(zip(labels, values)):
        text.append(fit_label(label, label_w, style, keep_end=True).ljust(label_w) + " ")
        if value is None:
            text.append("." if style.ascii else "·", style="dim")
            text.append("  (not reached yet)", style="dim")
        elif not math.isfinite(value):
            text.append(NAN_GLYPH if math.isnan(value) else INF_GLYPH, style="bold magenta")
            text.append(f" {value}")
        else:
            if not known or value <= 0:
                n = 0
            elif log and hi > lo:
                n = 1 + int(round((width - 1) * (math.log(value) - math.log(lo))
                                  / (math.log(hi) - math.log(lo))))
            else:
                n = max(1, int(round(width * value / hi)))
            text.append(BAR[style.ascii] * n, style="green" if style.color else "")
            text.append(f" {value:.3g}")
        if i < len(labels) - 1:
            text.append("\n")
    return text


BAR_VALUE_W = 8  # a norm as `bars` prints it (.3g of a value >= 0): "9.68e-05", "1.23e+04"


def bars_layout(labels: list[str], room: int | None, most_label: int = 24,
                most_bar: int = 60) -> tuple[int, int]:
    """(label_w, bar width) so a `bars` line fills `room` columns with its number whole: the
    label column as wide as the longest label (up to `most_label`, down to 10 when room is
    short), the bar taking the rest (4 at least)."""
    widest = max((len(label) for label in labels), default=0)
    if room is None:
        return min(widest, most_label), 22
    label_w = max(min(widest, most_label, room - BAR_VALUE_W - 2 - 12), min(widest, 10))
    bar_w = min(most_bar, max(4, room - label_w - 2 - BAR_VALUE_W - 1))
    return label_w, bar_w


def softmax(row: np.ndarray, temperature: float = 1.0, keep: np.ndarray | None = None) -> np.ndarray:
    """softmax(row / temperature) over the kept entries; masked entries get exactly 0."""
    z = np.asarray(row, dtype=np.float64) / temperature
    if keep is not None:
        z = np.where(keep, z, -np.inf)
    finite = z[np.isfinite(z)]
    if not finite.size:
        return np.zeros_like(z)
    e = np.exp(np.where(np.isfinite(z), z - finite.max(), -np.inf))
    return e / e.sum()


def entropy(p: np.ndarray) -> float:
    """-sum p log p in nats (0 log 0 = 0)."""
    p = np.asarray(p, dtype=np.float64)
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


TEMPERATURES = (0.25, 0.5, 1.0, 2.0, 4.0)


def temperature_table(row: np.ndarray, keep: np.ndarray | None, cols: list[str],
                      style: Style = Style(), temperatures: tuple[float, ...] = TEMPERATURES,
                      current: float | None = None, width: int | None = None) -> Text:
    """One attention row's softmax(row / T) for each T: its entropy and largest weight, then
    the shaded weights, one line per T (the numbers first, so a long row of keys never hides
    them). The legend and the note under the table wrap at `width` columns.

    Lower temperature sharpens towards the largest score (entropy -> 0); higher spreads towards
    uniform over the visible keys (entropy -> log n).
    """
    temps = list(temperatures)
    if current is not None and current not in temps:
        temps = sorted(temps + [current])
    weights = np.stack([softmax(row, t, keep) for t in temps])  # (n_temps, S)
    masked = keep is not None and not np.all(keep)
    keep2 = None if keep is None else np.broadcast_to(keep, weights.shape)
    labels = [f"T={t:g}" + ("*" if current is not None and t == current else "") for t in temps]
    lead = 7 + 1 + 7 + 1 + 5 + 1  # "T=0.25*" entropy max, before the shades
    text = Text(no_wrap=True, overflow="crop")
    text.append(wrap(Scale.probability().legend(style, masked=masked), width, indent=2))
    text.append("\n")
    widest = max(2, min(6, max((len(c) for c in cols), default=1) + 1))
    room = None if width is None else (width - lead) // max(1, len(cols))
    if room is not None and room < 2:  # too many keys for one line: the map, then the numbers
        text.append(heatmap(weights, labels, cols, keep2, style, scale=Scale.probability(),
                            legend=False))
        for label, w in zip(labels, weights):
            text.append("\n")
            text.append(wrap(f"{label:>7} entropy {entropy(w):.3f}  max {w.max():.3f}", width, 8))
        text.append("\n")
    else:
        cell = widest if room is None else min(widest, room)
        text.append(f"{'T':>7} {'entropy':>7} {'max':>5} ", style="bold")
        for label in cols:
            text.append(fit_label(label, cell - 1, style).ljust(cell), style="bold")
        text.append("\n")
        shades = heatmap(weights, None, None, keep2, style, cell=cell,
                         scale=Scale.probability(), legend=False).split("\n")
        for label, w, shade in zip(labels, weights, shades):
            text.append(f"{label:>7} {entropy(w):>7.3f} {w.max():>5.3f} ")
            text.append(shade)
            text.append("\n")
    n_visible = int(keep.sum()) if keep is not None else len(row)
    text.append(wrap(Text(f"uniform over {n_visible} keys: entropy "
                          f"{math.log(max(n_visible, 1)):.3f}; * the current T", style="dim"),
                     width, 2))
    return text
