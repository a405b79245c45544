"""Prose to a panel's width: lines broken between words, never inside a number or a word.

Maps and tables keep their rows whole (they scroll sideways); the sentences around them
(headers, legends, notes) wrap with `wrap`, so nothing a student must read is cut at the
panel's edge.

    wrap(Text("head 1/4 | scores  scaled  masked  [weights]"), 30)
"""
from __future__ import annotations

import io

from rich.console import Console
from rich.text import Text

_CONSOLE = Console(file=io.StringIO(), width=1000, color_system=None, legacy_windows=False)


def wrap(text: Text | str, width: int | None, indent: int = 0) -> Text:
    """`text` with every line longer than `width` cells broken between words (styles kept);
    continuation lines are indented by `indent`. A word wider than `width` is folded onto the
    next line: nothing is lost. None: unchanged."""
    text = Text(text) if isinstance(text, str) else text
    if width is None or width <= 0:
        return text
    out = []
    for line in text.split("\n", allow_blank=True):
        if line.cell_len <= width:
            out.append(line)
            continue
        pieces = line.wrap(_CONSOLE, width - indent, overflow="fold", no_wrap=False)
        for k, piece in enumerate(pieces):
            piece.rstrip()
            out.append(Text(" " * indent) + piece if k and indent else piece)
    result = Text("\n", no_wrap=True, overflow="crop").join(out)
    result.no_wrap, result.overflow = True, "crop"
    return result
