"""The status line: phase, event i/N, loss, the stepping level and the rest of the path, and
any break-it switch that is on."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..render import Style

LEVEL_SPLIT = {False: "›", True: ">"}  # between the stepping level and the rest of the path


class StatusLine(Static):
    """One line under the views; the phase is a word and a glyph, never colour alone.

    The event's path is split at the cursor's level, the node that `o`, `O` and `u` step from:
    "level decoder.blocks.0 › self_attn.softmax" means `o` runs past the rest of
    decoder.blocks.0 and `u` out of decoder. After `n` or `p` the level is the whole path.
    """

    def show(self, session, style: Style) -> None:
        e = session.event
        arrow = (">>" if e.phase == "forward" else "<<") if style.ascii else (
            "▶" if e.phase == "forward" else "◀")
        text = Text(no_wrap=True, overflow="ellipsis")
        phase_style = ("bold green" if e.phase == "forward" else "bold magenta") if style.color else "bold"
        text.append(f"{arrow} {e.phase} ", style=phase_style)
        text.append(f"{e.index + 1}/{len(session.trace)}  loss {session.trace.loss:.4f}  level ")
        level = session.level_path()
        text.append(level, style="bold")
        rest = e.path[len(level) + 1:]  # the level is a prefix of the path
        if rest:
            text.append(f" {LEVEL_SPLIT[style.ascii]} {rest}")
        breaks = session.breaks.active()
        if breaks:
            text.append("  BROKEN: " + ",".join(breaks), style="bold red" if style.color else "bold")
        self.update(text, layout=False)  # one fixed line: no layout pass needed
