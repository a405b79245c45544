"""The lesson screen: one step of a lesson at a time (the lesson pane, filling the screen), and
a key that opens the explorer at the step's place with the lesson pane beside its views (Esc
there comes back here, at the step the student got to).

    tui-tfs lesson attention      # LessonApp: the app with this screen on top of the picker
"""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen

from .app import TfsApp
from .lesson_pane import PANE_BINDINGS, LessonPane, PlaceWanted
from .lessons import LessonRun
from .widgets.footer import FittingFooter

SCREEN_BINDINGS = [
    Binding("question_mark", "help", "Help", show=True, tooltip="Help: every key"),
    Binding("q", "app.quit", "Quit", show=False),
]


class LessonScreen(Screen[None]):
    """One lesson, one step at a time: see the module docstring."""

    BINDINGS = SCREEN_BINDINGS
    GROUPS = [("Lesson", PANE_BINDINGS[:4] + SCREEN_BINDINGS)]
    DEFAULT_CSS = """
    LessonScreen { layout: vertical; }
    """

    def __init__(self, run: LessonRun) -> None:
        super().__init__()
        self.lesson_run = run

    def compose(self) -> ComposeResult:
        yield LessonPane(self.lesson_run, id="lesson-pane")
        yield FittingFooter()

    @property
    def pane(self) -> LessonPane:
        return self.query_one(LessonPane)

    @property
    def ready(self) -> set[int]:
        """The steps whose place is built."""
        return self.pane.ready

    def on_mount(self) -> None:
        self.pane.focus_body()
        if self.lesson_run.resumed:
            run = self.lesson_run
            self.notify(f"resumed at step {run.index + 1} of {run.count}", timeout=4)

    def on_screen_resume(self) -> None:
        """Back from the explorer, where the pane may have turned steps: show that step."""
        pane = self.pane
        pane.ready |= {i for i in range(self.lesson_run.count) if self.lesson_run.is_ready(i)}
        if pane.drawn != self.lesson_run.index:
            pane.show_step()
        pane.focus_body()

    def on_place_wanted(self, message: PlaceWanted) -> None:
        """g: the explorer at this step's place, with the lesson pane beside its views."""
        from .screens.lesson_explorer import LessonExplorerScreen

        self.app.push_screen(LessonExplorerScreen(self.lesson_run, self.app.style))

    def action_help(self) -> None:
        from .screens.explorer import ExplorerScreen
        from .screens.help import HelpScreen

        self.app.push_screen(HelpScreen(list(self.GROUPS) + list(ExplorerScreen.GROUPS)))


class LessonApp(TfsApp):
    """The app opened on a lesson: the lesson screen over the scenario picker."""

    def __init__(self, run: LessonRun, ascii: bool | None = None, color: bool | None = None,
                 class_settings=None):
        super().__init__(None, None, ascii=ascii, color=color, class_settings=class_settings)
        self.lesson_run = run

    def on_mount(self) -> None:  # TfsApp.on_mount runs too (Textual calls both): picker first
        self.call_after_refresh(self.push_screen, LessonScreen(self.lesson_run))
