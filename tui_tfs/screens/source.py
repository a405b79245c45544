"""The engine's code for the current event: the function that computed it, syntax-highlighted
with line numbers, the op's lines marked (a pointer in the number column, so the mark reads
without colour too, and a background where there is colour). Scrolls; Esc closes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.style import Style as RichStyle
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer, Vertical
from textual.widgets import Label, Static

from engine.maths.recorder import Event

from ..style import Style
from ..source import OpSource
from .dialogs import QUIT_KEY, Dialog

if TYPE_CHECKING:
    from rich.syntax import Syntax

MARKED_BACKGROUND = RichStyle(bgcolor="grey23")  # the op's lines, where there is colour
CONTEXT_ROWS = 2  # rows of the function shown above the op's first line when it opens


class AsciiPointer:
    """Rich's Syntax marks a highlighted line with '❱' unless the console is a legacy Windows
    one, then with '>': this renders it as such for an ASCII-only terminal."""

    def __init__(self, syntax: Syntax) -> None:
        self.syntax = syntax

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        options = options.copy()
        options.legacy_windows = True
        yield from self.syntax.__rich_console__(console, options)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return self.syntax.__rich_measure__(console, options)


def source_renderable(source: OpSource, style: Style):
    """The function as Rich syntax: file line numbers, the op's lines pointed at."""
    from rich.syntax import Syntax  # pygments: 2 MB that only this screen needs

    syntax = Syntax(source.code, "python", line_numbers=True, start_line=source.start,
                    highlight_lines=source.lines, theme="ansi_dark", word_wrap=False,
                    background_color="default")
    if style.color:
        first, last = (n - source.start + 1 for n in source.marked)  # lines of `code`, from 1
        syntax.stylize_range(MARKED_BACKGROUND, (first, 0), (last + 1, 0))
    return AsciiPointer(syntax) if style.ascii else syntax


class SourceScreen(Dialog[None]):
    """The code that computed one event; see the module docstring."""

    DEFAULT_CSS = """
    SourceScreen #source-scroll { height: 1fr; overflow-x: auto; overflow-y: auto; }
    SourceScreen #source-body { width: auto; }
    """
    BINDINGS = [Binding("escape,enter,q", "close", "Close"), QUIT_KEY]

    def __init__(self, event: Event, source: OpSource, style: Style) -> None:
        super().__init__()
        self.event, self.source, self.style = event, source, style

    def compose(self) -> ComposeResult:
        s, e = self.source, self.event
        first, last = s.marked
        lines = f"line {first}" if first == last else f"lines {first}-{last}"
        with Vertical(classes="dialog report source"):
            yield Label(f"Code of {e.phase} {e.op} (event {e.index + 1}): {s.path}, "
                        f"{s.function}, {lines}", classes="dialog-title", id="source-title")
            with ScrollableContainer(id="source-scroll"):
                yield Static(source_renderable(s, self.style), id="source-body")
            yield Label("Esc: close   arrows (long lines: right), PgUp/PgDn: scroll", classes="dialog-hint")

    def on_mount(self) -> None:
        scroll = self.query_one("#source-scroll")
        scroll.focus()
        row = max(0, self.source.marked[0] - self.source.start - CONTEXT_ROWS)
        self.call_after_refresh(scroll.scroll_to, y=row, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
