"""Small modal dialogs: type a line, choose from a list, read a report; and the too-small notice."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen, ScreenResultType
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

# Ctrl+C quits from a dialog too (the app's own priority binding does not reach into a modal
# screen): the app asks first when training is not saved. Priority: an Input's copy gives way.
QUIT_KEY = Binding("ctrl+c", "app.quit", "Quit", show=False, priority=True)


class Dialog(ModalScreen[ScreenResultType]):
    """A box over the screen, centred: a question, a choice, a report or the help. Its body is
    a container of class `dialog` (plus `report` or `help` for the tall ones)."""

    SCOPED_CSS = False  # the rules name the dialog's classes and the App's -ascii
    DEFAULT_CSS = """
    Dialog { align: center middle; }
    Dialog .dialog {
        width: 72;
        max-width: 100%;  /* a 60-column terminal: the dialog narrows, its text wraps */
        height: auto;
        max-height: 20;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    Dialog .dialog.report, Dialog .dialog.help {
        height: 20;
        max-height: 100%;
    }
    Dialog .dialog.report {
        width: 76;  /* a gradient check's legend line, beside the scrollbar */
    }
    Dialog .dialog-title {
        width: 100%;  /* a Label is as wide as its text: a long question would run off the dialog */
        text-style: bold;
        margin-bottom: 1;
    }
    Dialog .dialog-hint { color: $text-muted; }
    Dialog #choices {
        height: auto;
        max-height: 14;
    }
    Dialog #report-scroll { height: 1fr; }
    App.-ascii Dialog .dialog { border: ascii $accent; }
    """


class PromptScreen(Dialog[str | None]):
    """One line of input; Enter returns it, Escape returns None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), QUIT_KEY]

    def __init__(self, title: str, placeholder: str = "", value: str = "") -> None:
        super().__init__()
        self._title, self._placeholder, self._value = title, placeholder, value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Input(value=self._value, placeholder=self._placeholder, id="prompt")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceScreen(Dialog[object]):
    """A list to choose from (type to filter when `filter` is on); returns the chosen id."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), QUIT_KEY]

    def __init__(self, title: str, choices: list[tuple[str, object]], filter: bool = False,
                 selected: int = 0) -> None:
        super().__init__()
        self._title, self._choices, self._filter, self._selected = title, choices, filter, selected

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            if self._filter:
                yield Input(placeholder="type to filter, Enter to choose", id="filter")
            yield OptionList(*self._options(""), id="choices")

    def _options(self, needle: str) -> list[Option]:
        return [Option(label, id=str(i)) for i, (label, _) in enumerate(self._choices)
                if needle.lower() in label.lower()]

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            options.highlighted = min(self._selected, options.option_count - 1)
        if not self._filter:
            options.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options(self._options(event.value))
        if options.option_count:
            options.highlighted = 0

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self._choose(options.get_option_at_index(options.highlighted).id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose(event.option.id)

    def _choose(self, option_id: str | None) -> None:
        if option_id is not None:
            self.dismiss(self._choices[int(option_id)][1])

    def action_cancel(self) -> None:
        self.dismiss(None)


class ReportScreen(Dialog[None]):
    """A scrollable report (check findings, gradient check); Escape or Enter closes it."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close"), QUIT_KEY]

    def __init__(self, title: str, body: Text) -> None:
        super().__init__()
        self._title, self._body = title, body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog report"):
            yield Label(self._title, classes="dialog-title")
            with VerticalScroll(id="report-scroll"):
                yield Static(self._body, id="report-body")
            yield Label("Esc/Enter: close", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)


class TooSmallScreen(Screen[None]):
    """Shown instead of the layout when the terminal is below the size it needs."""

    DEFAULT_CSS = """
    TooSmallScreen { align: center middle; }
    TooSmallScreen #too-small-text {
        width: auto;
        height: auto;
        text-style: bold;
    }
    """

    BINDINGS = [Binding("q,ctrl+c", "app.quit", "Quit")]

    def __init__(self, need: tuple[int, int], size: tuple[int, int]) -> None:
        super().__init__()
        self.need = need
        self.now = size

    def compose(self) -> ComposeResult:
        yield Static(self._message(), id="too-small-text")

    def on_resize(self) -> None:
        self.app.check_size()

    def _message(self) -> str:
        return (f"Make the terminal larger.\n\ntui-tfs needs at least {self.need[0]} x "
                f"{self.need[1]};\nthis one is {self.now[0]} x {self.now[1]}.\n\nq quits.")

    def show_size(self, size: tuple[int, int]) -> None:
        self.now = size
        if self.is_mounted:
            self.query_one("#too-small-text", Static).update(self._message())


class QuitScreen(ChoiceScreen):
    """Leaving with training no checkpoint holds: save and quit, quit without saving, or
    cancel. Returns "save", "quit" or None (cancel: Esc, c, or choosing it)."""

    BINDINGS = [Binding("escape,c", "cancel", "Cancel: keep working"),
                Binding("s", "answer('save')", "Save and quit"),
                Binding("n", "answer('quit')", "Quit without saving")]
    DEFAULT_CSS = "QuitScreen .dialog-title { width: 100%; }"  # a long path wraps, never cut

    def __init__(self, unsaved: list[str]) -> None:
        """`unsaved`: a line or two per run: its step, and where "save" writes it."""
        title = "Quit tui-tfs? This training is not saved:\n" + "\n".join(unsaved)
        super().__init__(title, [("s  Save and quit", "save"),
                                 ("n  Quit without saving: the training is lost", "quit"),
                                 ("c  Cancel: keep working (Esc)", None)])

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)
