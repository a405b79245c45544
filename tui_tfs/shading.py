"""Shade scales: how a value becomes a glyph, and the legend that says which scale is in force.

Two scales, so that a shade never misleads:
- zero-centred (signed tensors, gradients, scores): -limit .. 0 .. +limit. Zero draws blank;
  the sign picks the glyph family (shades for +, dots for -; ASCII + * # @ and - = % &), and
  |value| / limit one of four steps, so sign and size read without colour.
- probability (attention weights, softmax outputs): fixed 0..1 in eight steps of 1/8 after the
  blank of an exact 0, so 0.001 and 0.24 draw differently and every map means the same.

A scale's limit is taken over one map, or shared across maps (heads and layers) on request;
its `scope` words say which, and `legend` prints them with both ends:

    zero-centred ±0.0421 over this map
    -0.0421 ●•∘· 0 ░▒▓█ +0.0421  × masked
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rich.text import Text

from .style import Style

# Glyphs by step, smallest first. A zero-centred scale has four steps a side: the positive
# side shades, the negative side dots (ASCII: + * # @ and - = % &), so the sign reads without
# colour. A probability has eight steps of 1/8 after the blank (exactly 0).
POSITIVE_RAMP = {False: "░▒▓█", True: "+*#@"}
NEGATIVE_RAMP = {False: "·∘•●", True: "-=%&"}
PROBABILITY_RAMP = {False: " ▁▂▃▄▅▆▇█", True: " .:-=+*#@"}
MASKED = {False: "×", True: "x"}  # a cell the query may not see: distinct from any shade


def _step(level: float, steps: int) -> int:
    """level in [0, 1] -> step 0..steps: 0 only for 0 itself; any level above 0 gets at least
    step 1, so a tiny nonzero value never draws like an exact zero."""
    if level <= 0:
        return 0
    return max(1, min(steps, int(math.ceil(level * steps - 1e-9))))


def short(value: float, digits: int = 3) -> str:
    """`digits` significant digits, the exponent without '+' or leading zeros: 0.0421, 3e-7."""
    s = f"{value:.{digits}g}"
    if "e" in s:
        mantissa, exponent = s.split("e")
        s = f"{mantissa}e{int(exponent)}"
    return s


ZERO_CENTRED, PROBABILITY = "zero-centred", "probability"


@dataclass(frozen=True)
class Scale:
    """How values map to glyphs, and the words the legend uses for it.

    zero-centred: -limit .. 0 .. +limit; 0 draws blank, |value| / limit picks one of four steps
    of the sign's glyph family. probability: fixed 0..1 in eight steps of 1/8, 0 blank.
    `scope` says what the scale was taken over ("over this map", "shared across heads/layers").
    `spread` (zero-centred, one legend for many maps each on its own scale): the smallest and
    largest of their limits.
    """

    kind: str = ZERO_CENTRED
    limit: float = 1.0
    scope: str = "over this map"
    spread: tuple[float, float] | None = None

    @classmethod
    def zero_centred(cls, values: np.ndarray, keep: np.ndarray | None = None,
                     scope: str = "over this map") -> Scale:
        """Centred on zero, reaching the largest |value| among the visible finite cells."""
        return cls(ZERO_CENTRED, largest_magnitude(values, keep), scope)

    @classmethod
    def probability(cls, scope: str = "") -> Scale:
        return cls(PROBABILITY, 1.0, scope)

    @classmethod
    def for_values(cls, values: np.ndarray, keep: np.ndarray | None = None,
                   probabilities: bool = False, scope: str = "over this map") -> Scale:
        """The fixed 0..1 scale for probabilities that are in [0, 1]; zero-centred otherwise
        (a broken softmax's negative or >1 weights must not be clipped into looking fine)."""
        if probabilities:
            v = np.asarray(values, dtype=np.float64)
            visible = np.isfinite(v) if keep is None else np.isfinite(v) & keep
            if not visible.any() or (v[visible].min() >= -1e-6 and v[visible].max() <= 1 + 1e-6):
                return cls.probability()
        return cls.zero_centred(values, keep, scope)

    def step(self, value: float) -> int:
        """The signed step of a finite value: 0 for zero, ±1..±4 (zero-centred) or 1..8."""
        if self.kind == PROBABILITY:
            return _step(value, len(PROBABILITY_RAMP[False]) - 1)
        if self.limit <= 0 or value == 0:
            return 0
        n = _step(abs(value) / self.limit, len(POSITIVE_RAMP[False]))
        return n if value > 0 else -n

    def glyph(self, value: float, style: Style) -> str:
        n = self.step(value)
        if self.kind == PROBABILITY:
            return PROBABILITY_RAMP[style.ascii][n]
        if n == 0:
            return " "
        return (POSITIVE_RAMP if n > 0 else NEGATIVE_RAMP)[style.ascii][abs(n) - 1]

    def color(self, value: float) -> str:
        n = self.step(value)
        if self.kind == PROBABILITY:
            return "bright_white" if n > 6 else ("yellow" if n > 3 else "")
        return "red" if n > 0 else ("blue" if n < 0 else "")

    def title(self, style: Style) -> str:
        """Which scale is in force, in words: 'zero-centred ±0.0421 over this map'."""
        if self.kind == PROBABILITY:
            return "0..1 fixed, 8 steps of 0.125" + (f", {self.scope}" if self.scope else "")
        pm = "+-" if style.ascii else "±"
        if self.spread is not None:
            lo, hi = self.spread
            return f"zero-centred, {self.scope}: {pm}{short(lo)} to {pm}{short(hi)}"
        if self.limit <= 0:
            return f"zero-centred {self.scope}: every value is 0"
        return f"zero-centred {pm}{short(self.limit)} {self.scope}"

    def ends(self, style: Style) -> Text:
        """Both ends and the middle with their glyphs: '-0.042 ●•∘· 0 ░▒▓█ +0.042', the
        glyphs in their map colours."""
        colored = style.color
        text = Text(no_wrap=True, overflow="crop")
        if self.kind == PROBABILITY:
            text.append("0 ")
            for n, glyph in enumerate(PROBABILITY_RAMP[style.ascii][1:], start=1):
                text.append(glyph, style=self.color(n / 8) if colored else "")
            text.append(" 1")
            return text
        if self.limit <= 0 and self.spread is None:
            text.append("0 blank")
            return text
        end = "max" if self.spread is not None else short(self.limit)
        text.append(f"-{end} ")
        text.append(NEGATIVE_RAMP[style.ascii][::-1], style="blue" if colored else "")
        text.append(" 0 ")
        text.append(POSITIVE_RAMP[style.ascii], style="red" if colored else "")
        text.append(f" +{end}")
        return text

    def legend(self, style: Style, masked: bool = False) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        text.append(self.title(style) + "\n", style="dim")
        text.append_text(self.ends(style))
        if masked:
            text.append(f"  {MASKED[style.ascii]} masked", style="dim")
        return text


def largest_magnitude(values: np.ndarray, keep: np.ndarray | None = None) -> float:
    """max |value| over the finite (and, with `keep`, visible) cells; 0 if there are none."""
    v = np.abs(np.asarray(values, dtype=np.float64))
    visible = np.isfinite(v) if keep is None else np.isfinite(v) & np.asarray(keep, dtype=bool)
    return float(v[visible].max()) if visible.any() else 0.0
