"""The Textual app: picks a scenario, opens the explorer, owns the glyph style and the keys.

    run_explorer("reverse", None, None)      # what `tui-tfs explore reverse` calls
    run_explorer(None, None, None)           # bare `tui-tfs`: the scenario picker
"""
from __future__ import annotations

from rich.markup import escape
from rich.text import Text

import asyncio
import locale
import os
import signal
import sys
import threading
from collections.abc import Iterable, Mapping
from functools import partial

from textual import messages
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.scrollbar import ScrollBar, ScrollBarRender

from engine.fast import parallel
from scenarios import ScenarioError

from .class_mode import ClassSettings
from .fair_share import memory_help, memory_reason
from .leaving import pending_saves, save_all
from .messages import ScenarioPicked
from .style import Style
from .screens import ExplorerScreen, HelpScreen, PickerScreen, QuitScreen, TooSmallScreen
from .screens.help import key_name
from .screens.training import TrainingScreen
from .session import Session, source_key
from .training import TrainingController

FULL_SIZE = (80, 23)  # every panel at once: a standard 80x24 terminal inside tmux or screen
MIN_SIZE = (60, 18)  # below FULL_SIZE, one panel at a time; below this, a "make it larger" notice
LARGE_SIZE = (110, 34)  # a projector's terminal: wider tree, larger map cells, taller plot
ASCII_TERMS = {"vt100", "vt102", "vt220", "vt52", "dumb", "ansi"}
HANGUP_GRACE = 10.0  # seconds a hung-up app may take to end after saving, before it is ended


def draws_in_browser(env: Mapping[str, str] | None = None) -> bool:
    """True when `tui-tfs serve` runs this process for a browser tab: Textual's web driver then
    draws into a pipe read by the server (not a terminal), for xterm.js, which shows Unicode."""
    env = os.environ if env is None else env
    return env.get("TEXTUAL_DRIVER", "").endswith(":WebDriver")


def wants_ascii(env: Mapping[str, str] | None = None, encoding: str | None = None) -> bool:
    """True when the terminal probably cannot show Unicode: a non-UTF-8 locale or an old TERM
    (never in a browser: the server's locale says nothing of it)."""
    env = os.environ if env is None else env
    if draws_in_browser(env):
        return False
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
    # Ctrl+C quits like q, asking first about unsaved training, on every screen: a priority
    # binding, so neither the screen's "copy selected text" nor an input's copy takes it.
    BINDINGS = [Binding("ctrl+c", "quit", "Quit", show=False, priority=True)]

    def __init__(self, scenario: str | None = None, path: str | None = None,
                 ascii: bool | None = None, color: bool | None = None,
                 session: Session | None = None, class_settings: ClassSettings | None = None
                 ) -> None:
        """`session`: one opened already (by the command line, which reports a bad source
        on stderr before the screen takes over); it opens first, as `scenario`/`path` would.
        `class_settings`: class mode's (class_mode.py); None: off."""
        super().__init__()
        self.class_settings = class_settings or ClassSettings()
        if self.class_settings.enabled:  # training on one engine thread (BLAS is on one)
            parallel.set_threads(1)
        self.source = path or scenario  # what to open first, or None for the picker
        self.ascii = wants_ascii() if ascii is None else ascii
        self.style = Style(ascii=self.ascii, color=wants_color() if color is None else color)
        self.session: Session | None = None  # the one the explorer shows now
        # every session opened, by source_key: reopening one from the picker returns to its
        # model, trace, cursor and training, for the life of the app
        self.sessions: dict[str, Session] = {}
        if session is not None and self.source:
            self.sessions[source_key(self.source)] = session
        # sessions no screen shows any more whose training no checkpoint holds (a lesson step's
        # model trained, then left for another step): quitting asks about them too
        self.runs_left: list[Session] = []
        self.leaving_decided = False  # q's question answered, or nothing to lose: leave as asked
        self.hung_up = False  # the terminal went (SIGHUP, its input ended) or SIGTERM came
        self.saved_on_leaving: list[str] = []  # what leaving unasked saved, said after the app
        self._too_small: TooSmallScreen | None = None

    def get_driver_class(self):
        """Textual's choice, with its Linux driver swapped for one that sleeps while idle."""
        from .quiet_driver import QuietLinuxDriver, QuietWebDriver

        chosen = super().get_driver_class()
        quiet = {driver.__base__: driver for driver in (QuietLinuxDriver, QuietWebDriver)}
        return quiet.get(chosen, chosen)

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
        self._leave_on_hangup()

    # -- scenarios ----------------------------------------------------------------------------------
    def open_scenario(self, source: str) -> bool:
        """Open the explorer on a built-in name, a scenario file or a checkpoint: the session
        opened before from the same source if there is one, else a new one; a bad source is a
        notice naming it and the fix; so is one more session past class mode's memory limit."""
        key = source_key(source)
        session = self.sessions.get(key)
        if session is None and self.sessions and not self.memory_allows(f"{source} not opened"):
            return False
        if session is None:
            try:
                session = Session.open(source, ascii=self.ascii)
            except (ScenarioError, OSError, ValueError) as error:  # CheckpointError, RunError
                self.notify(escape(str(error)), title="cannot open", severity="error", timeout=10)
                return False
            self.sessions[key] = session
        self.session = session
        while isinstance(self.screen, ExplorerScreen):
            self.pop_screen()
        self.push_screen(ExplorerScreen(session, self.style))  # in the view it was left in
        if session.warning:
            self.notify(escape(session.warning), title="weights not finite", severity="warning",
                        timeout=30)
        return True

    def memory_allows(self, what: str) -> bool:
        """True unless class mode's memory limit is passed; then False, and a notice says
        `what` ("reverse not opened") and why, that nothing is lost, and how to free memory."""
        full = memory_reason(self.class_settings)
        if full is None:
            return True
        self.notify(escape(memory_help(self.class_settings, f"{what}: {full}")),
                    title="memory limit", severity="warning", timeout=30)
        return False

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
        if self.session is not None and not getattr(self.session.scenario, "trainable", True):
            self.notify(f"{self.session.name} is opened to trace, not to train: train a scenario "
                        f"here and export it (tui-tfs export)", title="no training")
        elif self.session is not None:
            self.push_screen(TrainingScreen(self.session, self.style))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        everywhere = [("Everywhere", [Binding("ctrl+p", "", "Command palette: search every "
                                                            "action"),
                                      Binding("ctrl+c", "", "Quit (asks first when training "
                                                            "is not saved)")])]
        if isinstance(self.screen, TrainingScreen):  # its own keys only: i, p, g, k, s differ
            groups = list(TrainingScreen.GROUPS) + everywhere
        else:
            own = self.screen.GROUPS if isinstance(self.screen, ExplorerScreen) else \
                ExplorerScreen.GROUPS  # a lesson's explorer lists its lesson keys first
            groups = list(own) + [("Scenario picker", PickerScreen.BINDINGS)] + everywhere
        self.push_screen(HelpScreen(groups))

    # -- quitting: never loses training without asking -------------------------------------------------
    def unsaved_training(self) -> list[tuple[Session, TrainingController]]:
        """(session, controller) of every run that trains now or took steps no checkpoint holds:
        in the sessions opened, the runs left behind, and the session shown (a lesson's)."""
        found, seen = [], set()
        shown = [self.session] if self.session is not None else []
        for session in [*self.sessions.values(), *self.runs_left, *shown]:
            c = session.training
            if c is not None and id(c) not in seen and c.unsaved:
                seen.add(id(c))
                found.append((session, c))
        return found

    async def action_quit(self) -> None:
        """q, Ctrl+C, Ctrl+Q and the palette's Quit: at once when nothing would be lost, else
        one question: save and quit, quit without saving, or cancel."""
        unsaved = self.unsaved_training()
        if not unsaved:
            self.leave()
            return
        if isinstance(self.screen, QuitScreen):
            return  # asked already: the question stays until it is answered
        pending = pending_saves(unsaved)
        if not pending:  # a branch beside a run, both saved: nothing to lose
            self.leave()
            return
        self.push_screen(QuitScreen([p.question_line() for p in pending]), self._quit_answered)

    def _quit_answered(self, answer: str | None) -> None:
        if answer == "quit":
            self.leave()
        elif answer == "save":
            self.save_and_quit()

    def leave(self, message: Text | None = None) -> None:
        """Exit as the user asked: nothing more is saved on the way out."""
        self.leaving_decided = True
        self.exit(message=message)

    def on_exit_app(self) -> None:
        """Leaving unasked (a closed browser tab, a hung-up terminal, SIGTERM): every run no
        checkpoint holds is saved first, where q's question would have saved it (beside a file
        holding another run), and `run` says where once the terminal is back. An error ends
        the app without ExitApp: `run` saves then."""
        self._save_unasked("the app was closed; ")
        if self.hung_up:  # nobody is there: never outlive the save, whatever the exit waits on
            guard = threading.Timer(HANGUP_GRACE, os._exit, (129,))
            guard.daemon = True  # an exit that goes well is not held back by it
            guard.start()

    def _save_unasked(self, why: str) -> None:
        """Save every unsaved run, once, unless the user chose how to leave."""
        if self.leaving_decided:
            return
        self.leaving_decided = True
        try:
            said, failed = save_all(pending_saves(self.unsaved_training()), prefix=why)
        except Exception as error:  # noqa: BLE001 (leaving: say it, never raise here)
            said, failed = [], [f"nothing saved: {error!r}"]
        self.saved_on_leaving += said + [f"tui-tfs: {line}" for line in failed]

    def _leave_on_hangup(self) -> None:
        """SIGHUP (an SSH connection dropped, a terminal closed) and SIGTERM end the app the way
        a closed browser tab does (Textual's ExitApp), so `on_exit_app` saves first; without
        this, both killed the process at once."""
        if sys.platform == "win32":
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._hang_up)
            except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
                return

    def _hang_up(self) -> None:
        self.hung_up = True
        self.post_message(messages.ExitApp())

    def run(self, *args, **kwargs):
        result = super().run(*args, **kwargs)
        self._save_unasked("the app ended on an error; ")  # an error ends it without ExitApp
        for line in self.saved_on_leaving:
            try:
                print(line, file=sys.stderr, flush=True)
            except OSError:  # the terminal hung up: the file is what matters
                pass
        return result

    def save_and_quit(self) -> None:
        """Pause and checkpoint every unsaved run (like the training screen's w), then quit,
        saying where each went; a failed save says why and keeps the app open."""
        said, failed = save_all(pending_saves(self.unsaved_training()))
        if failed:
            self.notify(escape("\n".join(failed + said)), title="not all saved; still open",
                        severity="error", timeout=15)
            return
        self.leave(message=Text("\n".join(said)))

    # -- command palette: every key of the screen, searchable ----------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title == "Quit":  # Textual's says "as soon as possible": ours may ask
                command = SystemCommand("Quit", "Quit tui-tfs (q, Ctrl+C); asks first when "
                                        "training is not saved", self.action_quit)
            yield command
        seen = set()
        for key, active in screen.active_bindings.items():
            b = active.binding
            if not b.description or b.action in seen or active.node is self:
                continue
            if b.action in ("screen.copy_text", "copy"):  # Ctrl+C quits: copying is the terminal's
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

def run_explorer(scenario: str | None, path: str | None, ascii: bool | None,
                 session: Session | None = None,
                 class_settings: ClassSettings | None = None) -> None:
    """Run the app: on `scenario` (a built-in name) or `path` (a scenario file or checkpoint),
    else the picker; `session`, when given, is that source opened already. `ascii` None picks
    ASCII automatically when the terminal cannot show Unicode."""
    TfsApp(scenario, path, ascii, session=session, class_settings=class_settings).run()
