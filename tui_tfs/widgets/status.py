"""The status line: phase, event i of N, path, loss, and what the trace ran on."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..render import Style


class StatusLine(Static):
    """One line under the views; the phase is a word and a glyph, never colour alone."""

    def show(self, session, style: Style) -> None:
        e = session.event
        arrow = (">>" if e.phase == "forward" else "<<") if style.ascii else (
            "▶" if e.phase == "forward" else "◀")
        text = Text(no_wrap=True, overflow="ellipsis")
        phase_style = ("bold green" if e.phase == "forward" else "bold magenta") if style.color else "bold"
        text.append(f"{arrow} {e.phase} ", style=phase_style)
        text.append(f"event {e.index + 1} of {len(session.trace)}  loss {session.trace.loss:.4f}  ")
        text.append(f"{e.path}", style="bold")
        breaks = session.breaks.active()
        if breaks:
            text.append("  BROKEN: " + ",".join(breaks), style="bold red" if style.color else "bold")
        self.update(text, layout=False)  # one fixed line: no layout pass needed
