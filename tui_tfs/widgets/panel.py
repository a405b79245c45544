"""A scrollable panel of rendered text: the base of every view that draws a map or a table."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import ScrollableContainer
from textual.widgets import Static

from ..render import Style


class TextPanel(ScrollableContainer, can_focus=True):
    """Shows one `Text`; scrolls both ways when the text is larger than the panel.

    Subclasses implement `render_view(session, style) -> Text`; the screen calls `show` on
    the visible panel only, so hidden views cost nothing while stepping.
    """

    def compose(self) -> ComposeResult:
        yield Static(id="body", expand=False, shrink=False, markup=False)

    def render_view(self, session, style: Style) -> Text:  # pragma: no cover - abstract
        raise NotImplementedError

    def show(self, session, style: Style) -> None:
        self.query_one("#body", Static).update(self.render_view(session, style))

    @property
    def text(self) -> str:
        """The plain text shown (for tests)."""
        content = self.query_one("#body", Static).content
        return content.plain if isinstance(content, Text) else str(content)
