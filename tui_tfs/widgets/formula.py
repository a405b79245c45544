"""The formula panel: what the current operation computes, its shapes with numbers, and why.

The explanation is often longer than the panel's few rows: the panel scrolls (Tab focuses it,
arrows scroll), its bottom border says so when text is hidden, and `F` on the explorer gives
it the whole column.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..style import Style

MORE = {False: "more … F shows all, or Tab + ↓", True: "more ... F shows all, or Tab + down"}


class FormulaPanel(VerticalScroll, can_focus=True):
    """Title, formula (Unicode or ASCII), this event's shapes, and the explanation."""

    SCOPED_CSS = False  # the ASCII rule starts at the App's class -ascii
    DEFAULT_CSS = """
    FormulaPanel {
        height: auto;
        max-height: 35%;
        border: round $secondary;
        border-title-align: left;
        border-subtitle-align: right;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    FormulaPanel > #formula-body { height: auto; }
    /* F: the whole explanation in the view's place */
    FormulaPanel.-expanded {
        height: 1fr;
        max-height: 100%;
    }
    App.-ascii FormulaPanel { border: ascii $accent; }
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._style = Style()

    def compose(self) -> ComposeResult:
        yield Static(id="formula-body", markup=False)

    def show(self, session, style: Style) -> None:
        self._style = style
        ex = session.explanation()
        text = Text()
        text.append(ex.title, style="bold")
        text.append(f"  [{ex.key}]\n", style="dim")
        text.append((ex.formula_ascii if style.ascii else ex.formula_unicode) + "\n",
                    style="bold cyan" if style.color else "bold")
        text.append(ex.shapes.rstrip() + "\n")
        text.append(ex.text.strip(), style="italic" if style.color else "")
        self.query_one("#formula-body", Static).update(text)
        self.border_title = "formula"
        self.scroll_home(animate=False)
        self.call_after_refresh(self.mark_hidden_text)

    def mark_hidden_text(self) -> None:
        """Say on the bottom border when part of the text is out of sight."""
        hidden = self.max_scroll_y > self.scroll_y
        self.border_subtitle = MORE[self._style.ascii] if hidden else ""

    def on_resize(self) -> None:
        self.call_after_refresh(self.mark_hidden_text)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self.mark_hidden_text()

    @property
    def text(self) -> str:
        """The plain text shown (for tests)."""
        content = self.query_one("#formula-body", Static).content
        return content.plain if isinstance(content, Text) else str(content)
