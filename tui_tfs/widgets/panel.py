"""A scrollable panel of rendered text: the base of every view that draws a map or a table."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import ScrollableContainer
from textual.widgets import Static

from ..style import Style


class TextPanel(ScrollableContainer, can_focus=True):
    """Shows one `Text`; scrolls both ways when the text is larger than the panel.

    Subclasses implement `render_view(session, style) -> Text`; the screen calls `show` on
    the visible panel only, so hidden views cost nothing while stepping. A view that lays
    text out to `text_width` is drawn again when the panel changes size.
    """

    SCOPED_CSS = False  # the ASCII rule starts at the App's class -ascii
    DEFAULT_CSS = """
    TextPanel {
        height: 1fr;
        border: round $primary;
        border-title-align: left;
        padding: 0 1;
        scrollbar-size: 1 1;
    }
    TextPanel > #body {
        width: auto;
        height: auto;
    }
    App.-ascii TextPanel { border: ascii $accent; }
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shown: tuple[object, Style] | None = None  # the last (session, style) drawn

    def compose(self) -> ComposeResult:
        yield Static(id="body", expand=False, shrink=False, markup=False)

    def render_view(self, session, style: Style) -> Text:  # pragma: no cover - abstract
        raise NotImplementedError

    def show(self, session, style: Style) -> None:
        self._shown = (session, style)
        self.query_one("#body", Static).update(self.render_view(session, style))

    def on_resize(self) -> None:
        if self._shown is not None and self.display:
            self.show(*self._shown)

    @property
    def text_width(self) -> int | None:
        """Columns the text has without scrolling sideways, a vertical scrollbar's column kept
        free (so a scrollbar coming or going does not reflow the text); None before the panel
        was first laid out. From the panel's last size: a view switched back in has it."""
        width = (self.outer_size.width - self.styles.gutter.width
                 - self.styles.scrollbar_size_vertical)
        return width if width > 0 else None

    @property
    def text(self) -> str:
        """The plain text shown (for tests)."""
        content = self.query_one("#body", Static).content
        return content.plain if isinstance(content, Text) else str(content)
