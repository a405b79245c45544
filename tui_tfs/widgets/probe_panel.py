"""The body of the probe's screens (the scrubber, the diff view): a scrolling text panel
without a border, whose screen says what to draw (`screen.body(width) -> Text`)."""
from __future__ import annotations

from rich.text import Text

from ..style import Style
from .panel import TextPanel


class ProbePanel(TextPanel):
    """Draws `screen.body(width)`; no border: at 80x23 every row goes to the map."""

    SCOPED_CSS = False  # the ASCII rule starts at the App's class -ascii
    DEFAULT_CSS = """
    ProbePanel { border: none; padding: 0 1; }
    App.-ascii ProbePanel { border: none; }
    """

    def render_view(self, screen, style: Style) -> Text:
        return screen.body(self.text_width)
