"""The help screen: every key of the explorer and of the app, built from the bindings themselves
so it can never drift from what the keys do."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from .dialogs import QUIT_KEY, Dialog


def key_name(key: str) -> str:
    names = {"question_mark": "?", "left_square_bracket": "[", "right_square_bracket": "]",
             "plus": "+", "minus": "-", "slash": "/", "escape": "Esc", "enter": "Enter",
             "ctrl+p": "Ctrl+P", "ctrl+c": "Ctrl+C", "colon": ":", "full_stop": ".",
             "space": "Space", "greater_than_sign": ">", "less_than_sign": "<", "ctrl+t": "Ctrl+T"}
    return ",".join(names.get(k, k) for k in key.split(","))


def bindings_text(groups: list[tuple[str, list[Binding]]]) -> Text:
    text = Text()
    for title, bindings in groups:
        text.append(f"{title}\n", style="bold underline")
        for b in bindings:
            if b.description:
                text.append(f"  {key_name(b.key):<10}", style="bold")
                text.append(f"{b.tooltip or b.description}\n")
        text.append("\n")
    return text


NAVIGATION = ("Tab and Shift+Tab move the focus between panels (the tree, the formula panel, "
              "the view); arrows, PgUp/PgDn, Home/End scroll the focused panel when its text is "
              "larger than the panel (a bar on its edge shows there is more), also this help. "
              "Below 80x23 one panel shows at a time: L flips between the tree and the view; "
              "on the training screen v flips the loss plot, the numbers and panel 1/2/3.")


class HelpScreen(Dialog[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close help"), QUIT_KEY]

    def __init__(self, groups: list[tuple[str, list[Binding]]]) -> None:
        super().__init__()
        self._groups = groups

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help", id="help-scroll"):
            yield Static(Text("Keys (Esc or ? closes; Ctrl+P searches them)\n", style="bold")
                         + Text(NAVIGATION + "\n\n") + bindings_text(self._groups),
                         id="help-body")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)
