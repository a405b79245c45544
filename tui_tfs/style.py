"""How to draw: the glyph set (Unicode or ASCII) and whether colour is allowed.

The one value every renderer, shade scale and widget is handed; it depends on nothing of ours,
so `shading` and `render` both import it and neither imports the other's caller.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Style:
    """How to draw: the glyph set and whether colour is allowed."""

    ascii: bool = False  # ASCII-only glyphs
    color: bool = True  # add colour on top of the glyphs
