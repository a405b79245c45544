"""The timeline under the loss plot: a mark for every snapshot, on the columns of the plot's
own step axis, the selected one drawn apart (▲, or ^ in ASCII; reversed in colour).

    timeline_text([0, 40, 80], selected=1, axis=(8, 50), last=120, width=52, style)

`axis` is where the plot's frame stands on its first line (the columns of its two top
corners, `canvas_columns`); a step s falls on the column plotext gives it, linearly from step 1
at the first column inside the frame to `last` at the last one. Several snapshots may share a
column: the selected one is the one drawn there. Pure: lists in, Rich `Text` out.
"""
from __future__ import annotations

from rich.text import Text

from ..style import Style

MARK = {False: "╵", True: "|"}  # a snapshot
SELECTED = {False: "▲", True: "^"}  # the selected snapshot
CORNERS = {False: ("┌", "┐"), True: ("+", "+")}  # the plot frame's top corners
LABEL = "snaps"  # in the margin left of the frame, when it is wide enough


def canvas_columns(first_line: str, ascii: bool) -> tuple[int, int] | None:
    """The columns of the plot frame's top-left and top-right corners; None without a frame."""
    left, right = CORNERS[ascii]
    start = first_line.find(left)
    stop = first_line.rfind(right)
    return (start, stop) if 0 <= start < stop - 1 else None


def step_column(step: float, axis: tuple[int, int], last: int) -> int:
    """The column a step is drawn on: step 1 at the first column inside the frame, `last` at
    the last one (plotext's x axis from 1 to last); earlier and later steps at the ends."""
    first, inner = axis[0] + 1, axis[1] - axis[0] - 1
    fraction = (step - 1) / max(1, last - 1)
    return first + max(0, min(inner - 1, round(fraction * (inner - 1))))


def timeline_text(steps: list[int], selected: int | None, axis: tuple[int, int] | None,
                  last: int, width: int, style: Style) -> Text:
    """One row of `width` cells: a mark under each snapshot's step, the selected one (an index
    into `steps`) drawn apart; "snaps" in the margin when it fits."""
    text = Text(no_wrap=True, overflow="crop")
    if axis is None or not steps:
        return text
    cells = [" "] * width
    if axis[0] >= len(LABEL) + 1:
        cells[axis[0] - len(LABEL) - 1:axis[0] - 1] = LABEL
    for step in steps:
        cells[step_column(step, axis, last)] = MARK[style.ascii]
    at = None
    if selected is not None and 0 <= selected < len(steps):
        at = step_column(steps[selected], axis, last)
        cells[at] = SELECTED[style.ascii]
    text.append("".join(cells), style="dim")
    if at is not None:
        text.stylize("bold reverse" if style.color else "bold", at, at + 1)
    return text
