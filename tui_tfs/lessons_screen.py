"""The lesson screen: one step of a lesson at a time, its text, its question and the feedback,
and a key that opens the explorer at the step's place (Esc there comes back here).

    tui-tfs lesson attention      # LessonApp: the app with this screen on top of the picker

A step whose model trains in place is prepared in a thread worker that reports its progress
by messages and stops when the screen goes (it checks `is_cancelled` between training steps).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Markdown, Static
from textual.worker import get_current_worker

from .app import TfsApp
from .lessons import LessonRun
from .widgets.footer import FittingFooter

YIELD_SECONDS = 0.003  # a pause per training step (each ~10-30 ms): a live screen for 1-3% more

LESSON_BINDINGS = [
    Binding("n", "step(1)", "Next", show=True, tooltip="Next step"),
    Binding("p", "step(-1)", "Prev", show=True, tooltip="Previous step"),
    Binding("g", "go", "Go there", show=True,
            tooltip="Open the explorer at this step's place (Esc there comes back; g again "
                    "takes you back to the place after wandering off)"),
    Binding("a", "answer", "Answer", show=True, tooltip="Type an answer (Enter to check it)"),
    Binding("question_mark", "help", "Help", show=True, tooltip="Help: every key"),
    Binding("q", "app.quit", "Quit", show=False),
]


class _Stopped(Exception):
    """The screen went away while a step was being prepared."""


@dataclass
class StepReady(Message):
    index: int
    error: str | None = None  # why the step's place could not be built


@dataclass
class Preparing(Message):
    text: str


class LessonScreen(Screen[None]):
    """One lesson, one step at a time: see the module docstring."""

    BINDINGS = LESSON_BINDINGS
    GROUPS = [("Lesson", LESSON_BINDINGS)]
    SCOPED_CSS = False  # the ASCII rule reads the App's class, outside this screen
    DEFAULT_CSS = """
    LessonScreen { layout: vertical; }
    #lesson-title { height: auto; padding: 0 1; text-style: bold; }
    #lesson-body { height: 1fr; border: round $primary; padding: 0 1; }
    App.-ascii #lesson-body { border: ascii $primary; }
    #lesson-body Markdown { margin: 0; padding: 0; }
    #lesson-question { height: auto; margin-top: 1; }
    #lesson-feedback { height: auto; }
    #lesson-answer { display: none; }
    #lesson-answer.-asking { display: block; }
    """

    def __init__(self, run: LessonRun) -> None:
        super().__init__()
        self.lesson_run = run
        self.ready: set[int] = set()  # steps whose place is built
        self.feedback = ""

    def compose(self) -> ComposeResult:
        yield Static(id="lesson-title")
        with VerticalScroll(id="lesson-body"):
            yield Markdown(id="lesson-text")
            yield Static(id="lesson-question")
            yield Static(id="lesson-feedback")
        yield Input(id="lesson-answer", placeholder="your answer, then Enter (Esc: cancel)")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.show_step()
        self.query_one("#lesson-body").focus()  # arrows and PgUp/PgDn scroll a long step
        if self.lesson_run.resumed:
            run = self.lesson_run
            self.notify(f"resumed at step {run.index + 1} of {run.count}", timeout=4)

    # -- drawing ---------------------------------------------------------------------------------
    def show_step(self) -> None:
        run, step = self.lesson_run, self.lesson_run.step
        title = f"{run.lesson.title}: step {run.index + 1}/{run.count}"
        self.query_one("#lesson-title", Static).update(
            Text(title + (f" - {step.title}" if step.title else ""), overflow="fold"))
        self.query_one("#lesson-text", Markdown).update(self._plain(step.text))
        self.feedback = ""
        self._draw_question()
        self.query_one("#lesson-body").scroll_home(animate=False)
        if run.index not in self.ready:  # after the step's text is drawn
            self.call_after_refresh(self.prepare, run.index)

    def _draw_question(self, waiting: str | None = None) -> None:
        step, text = self.lesson_run.step, Text()
        if step.question is not None:
            text.append("Question: ", style="bold")
            text.append(self._plain(step.question.ask) + "\n")
            if self.lesson_run.index in self.ready:
                _, choices = self.lesson_run.expected()
                for number, label in enumerate(choices or [], start=1):
                    text.append(f"  {number}  {label}\n")
                text.append("a: answer" + (" (a label or its number)" if choices else ""),
                            style="dim")
        if waiting:
            text.append(("\n" if text else "") + waiting, style="italic")
        self.query_one("#lesson-question", Static).update(text)
        self.query_one("#lesson-feedback", Static).update(Text(self.feedback))

    def _plain(self, text: str) -> str:
        """The lesson's text; in ASCII mode, characters outside ASCII shown as '?'."""
        return text.encode("ascii", "replace").decode() if self.app.ascii else text

    # -- preparing a step (may train a model) ----------------------------------------------------
    @work(thread=True, exclusive=True, group="lesson-step")
    def prepare(self, index: int) -> None:
        worker = get_current_worker()

        def progress(step: int, total: int) -> None:
            if worker.is_cancelled:
                raise _Stopped
            time.sleep(YIELD_SECONDS)  # let the UI thread have the GIL between steps
            if step == 1 or step % 10 == 0 or step == total:
                self.post_message(Preparing(f"training this step's model: step {step}/{total}"))

        self.lesson_run.worlds.progress = progress
        self.post_message(Preparing("preparing this step's model..."))
        try:
            self.lesson_run.shown(index)
            error = None
        except _Stopped:
            return
        except ValueError as problem:  # PlaceError, ScenarioError, CheckpointError
            error = (f"this step's place cannot be shown: {problem}; check the lesson with "
                     f"tui-tfs lesson check")
        if not worker.is_cancelled:
            self.post_message(StepReady(index, error))

    def on_preparing(self, message: Preparing) -> None:
        self._draw_question(message.text)

    def on_step_ready(self, message: StepReady) -> None:
        if message.error:
            self.feedback = message.error
            self._draw_question()
            return
        self.ready.add(message.index)
        if message.index == self.lesson_run.index:
            self._draw_question()

    # -- actions ---------------------------------------------------------------------------------
    def action_step(self, delta: int) -> None:
        moved = self.lesson_run.next() if delta > 0 else self.lesson_run.previous()
        if moved:
            self._close_answer()
            self.show_step()
        else:
            self.notify("that was the last step" if delta > 0 else "this is the first step",
                        timeout=3)

    def action_go(self) -> None:
        if self.lesson_run.index not in self.ready:
            self.notify("this step is still being prepared", timeout=3)
            return
        from .screens.explorer import ExplorerScreen

        session = self.lesson_run.session()
        self.app.session = session  # Ctrl+T in the explorer trains this session
        explorer = ExplorerScreen(session, self.app.style)
        self.app.push_screen(explorer)
        if session.shown_view != "tensor":
            self.app.call_after_refresh(explorer.action_view, session.shown_view)

    def action_answer(self) -> None:
        if self.lesson_run.step.question is None:
            self.notify("this step asks nothing: n goes on", timeout=3)
            return
        if self.lesson_run.index not in self.ready:
            self.notify("this step is still being prepared", timeout=3)
            return
        box = self.query_one("#lesson-answer", Input)
        box.value = ""
        box.add_class("-asking")
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        verdict = self.lesson_run.answer(event.value)
        mark = ("[right] " if verdict.right else "[not yet] ") if self.app.ascii else (
            "✓ " if verdict.right else "✗ ")
        self.feedback = mark + self._plain(verdict.feedback) + (
            f" (the model's answer: {verdict.answer})" if verdict.right else "")
        self._close_answer()
        self._draw_question()

    def key_escape(self) -> None:
        self._close_answer()

    def _close_answer(self) -> None:
        box = self.query_one("#lesson-answer", Input)
        box.remove_class("-asking")
        self.query_one("#lesson-body").focus()

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
