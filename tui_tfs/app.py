"""The Textual app: picks a scenario, opens the explorer, owns the glyph style and the keys.

    run_explorer("reverse", None, None)      # what `tui-tfs explore reverse` calls
    run_explorer(None, None, None)           # bare `tui-tfs`: the scenario picker
"""
from __future__ import annotations

from rich.markup import escape

import locale
import os
from collections.abc import Iterable, Mapping
from functools import partial

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.scrollbar import ScrollBar, ScrollBarRender

from scenarios import ScenarioError

from .messages import ScenarioPicked
from .render import Style
from .screens import ExplorerScreen, HelpScreen, PickerScreen, TooSmallScreen
from .screens.help import key_name
from .screens.training import TrainingScreen
from .session import Session

FULL_SIZE = (80, 23)  # every panel at once: a standard 80x24 terminal inside tmux or screen
MIN_SIZE = (60, 18)  # below FULL_SIZE, one panel at a time; below this, a "make it larger" notice
LARGE_SIZE = (110, 34)  # a projector's terminal: wider tree, larger map cells, taller plot
ASCII_TERMS = {"vt100", "vt102", "vt220", "vt52", "dumb", "ansi"}


def wants_ascii(env: Mapping[str, str] | None = None, encoding: str | None = None) -> bool:
    """True when the terminal probably cannot show Unicode: a non-UTF-8 locale or an old TERM."""
    env = os.environ if env is None else env
    if env.get("TERM", "") in ASCII_TERMS:
        return True
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = env.get(name)
        if value:
            return not ("utf-8" in value.lower() or "utf8" in value.lower())
    encoding = encoding or locale.getpreferredencoding(False)
    return "utf" not in encoding.lower()


def wants_color(env: Mapping[str, str] | None = None) -> bool:
    """False when NO_COLOR is set to anything non-empty (https://no-color.org)."""
    env = os.environ if env is None else env
    return not env.get("NO_COLOR")


class AsciiScrollBarRender(ScrollBarRender):
    """Scrollbars without block glyphs: the thumb is carried by its background alone."""

    VERTICAL_BARS = [" "] * 8
    HORIZONTAL_BARS = [" "] * 8


class TfsApp(App[None]):
    """tui-tfs: step through every operation of a transformer's forward and backward pass."""

    TITLE = "tui-tfs"
    CSS_PATH = "app.tcss"
    BINDINGS = [Binding("ctrl+c", "quit", "Quit", show=False)]

    def __init__(self, scenario: str | None = None, path: str | None = None,
                 ascii: bool | None = None, color: bool | None = None) -> None:
        super().__init__()
        self.source = path or scenario  # what to open first, or None for the picker
        self.ascii = wants_ascii() if ascii is None else ascii
        self.style = Style(ascii=self.ascii, color=wants_color() if color is None else color)
        self.session: Session | None = None
        self._too_small: TooSmallScreen | None = None

    def on_mount(self) -> None:
        ScrollBar.renderer = AsciiScrollBarRender if self.ascii else ScrollBarRender
        if self.ascii:
            self.add_class("-ascii")
        if not self.style.color:
            self.add_class("-no-color")
        self.push_screen(PickerScreen())
        if self.source:
            self.open_scenario(self.source)
        self.check_size()

    # -- scenarios ----------------------------------------------------------------------------------
    def open_scenario(self, source: str) -> bool:
        """Open the explorer on a built-in name or a scenario file; a bad one is a notice."""
        try:
            session = Session.open(source, ascii=self.ascii)
        except (ScenarioError, OSError, ValueError) as error:
            self.notify(escape(str(error)), title="cannot open scenario", severity="error", timeout=10)
            return False
        self.session = session
        while isinstance(self.screen, ExplorerScreen):
            self.pop_screen()
        self.push_screen(ExplorerScreen(session, self.style))
        return True

    def on_scenario_picked(self, message: ScenarioPicked) -> None:
        if self.open_scenario(message.source) and message.train:
            self.action_train()

    def action_train(self) -> None:
        """The training screen of the current session: back to it if it is open below (the
        explorer opened from it to inspect), else a new one on top of the explorer."""
        for depth, screen in enumerate(reversed(self.screen_stack)):
            if isinstance(screen, TrainingScreen):
                for _ in range(depth):
                    self.pop_screen()
                return
        if self.session is not None:
            self.push_screen(TrainingScreen(self.session, self.style))

    def action_pick(self) -> None:
        """Esc in the explorer, one level back: from the attention overview (`A`) to the view
        it was opened from, on the same event; from the explorer to the scenario picker."""
        screen = self.screen
        if not isinstance(screen, ExplorerScreen):
            return
        if screen.view_name == "overview":
            screen.close_overview()
        else:
            self.pop_screen()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        everywhere = [("Everywhere", [Binding("ctrl+p", "", "Command palette: search every "
                                                            "action")])]
        if isinstance(self.screen, TrainingScreen):  # its own keys only: i, p, g, k, s differ
            groups = list(TrainingScreen.GROUPS) + everywhere
        else:
            groups = list(ExplorerScreen.GROUPS) + [("Scenario picker", PickerScreen.BINDINGS)] \
                + everywhere
        self.push_screen(HelpScreen(groups))

    # -- command palette: every key of the screen, searchable ----------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        seen = set()
        for key, active in screen.active_bindings.items():
            b = active.binding
            if not b.description or b.action in seen or active.node is self:
                continue
            seen.add(b.action)
            yield SystemCommand(b.tooltip or b.description, f"key {key_name(key)}",
                                partial(self._run_from_palette, active.node, b.action))

    async def _run_from_palette(self, node, action: str) -> None:
        await self.run_action(action, node)

    # -- terminal size --------------------------------------------------------------------------------
    def check_size(self) -> None:
        """Pick the layout for the terminal's size: the full one from FULL_SIZE, a compact one
        (one panel at a time) down to MIN_SIZE, below that the too-small notice; at LARGE_SIZE
        the panels grow. Called on mount and by every screen's resize."""
        width, height = self.size
        self.set_class(width < FULL_SIZE[0] or height < FULL_SIZE[1], "-compact")
        self.set_class(width >= LARGE_SIZE[0] and height >= LARGE_SIZE[1], "-large")
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        if small and self._too_small is None:
            self._too_small = TooSmallScreen(MIN_SIZE, (width, height))
            self.push_screen(self._too_small)
        elif small and self._too_small is not None:
            self._too_small.show_size((width, height))
        elif not small and self._too_small is not None:
            if self.screen is self._too_small:
                self.pop_screen()
            self._too_small = None

    @property
    def compact(self) -> bool:
        """True below FULL_SIZE: screens show one panel at a time."""
        return self.has_class("-compact")

    @property
    def large(self) -> bool:
        """True from LARGE_SIZE: maps draw larger cells."""
        return self.has_class("-large")

def run_explorer(scenario: str | None, path: str | None, ascii: bool | None) -> None:
    """Run the app: on `scenario` (a built-in name) or `path` (a scenario file), else the picker.
    `ascii` None picks ASCII automatically when the terminal cannot show Unicode."""
    TfsApp(scenario, path, ascii).run()
