"""The lesson pane: one step of a lesson, its text, its question, the feedback on an answer.

The lesson screen shows it on its own; the lesson's explorer shows it beside the views (or,
at 80x23, in their place: `w` flips between the two). Its keys work while it has the focus:

    n / p    next / previous step        (the pane posts StepShown: the explorer follows)
    g        this step's place           (posts PlaceWanted: the screen decides what it means)
    a        type an answer, Enter to have it judged against the model the step shows

A step whose model trains in place is prepared in a thread worker that reports its progress by
messages and stops when the pane goes (it checks `is_cancelled` between training steps).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Markdown, Static
from textual.worker import get_current_worker

from .lessons import LessonRun, Verdict

YIELD_SECONDS = 0.003  # a pause per training step (each ~10-30 ms): a live screen for 1-3% more

PANE_BINDINGS = [
    Binding("n", "step(1)", "Next", show=True, tooltip="Next step of the lesson"),
    Binding("p", "step(-1)", "Prev", show=True, tooltip="Previous step of the lesson"),
    Binding("g", "place", "Go there", show=True,
            tooltip="Open the explorer at this step's place (in the explorer: take me back to "
                    "this step's place after wandering off)"),
    Binding("a", "answer", "Answer", show=True, tooltip="Type an answer (Enter to check it)"),
    Binding("escape", "close_answer", "Cancel the answer", show=False),
]


class _Stopped(Exception):
    """The pane went away while a step was being prepared."""


@dataclass
class StepReady(Message):
    """The step's place is built (or could not be: `error` says why)."""

    index: int
    error: str | None = None


@dataclass
class Preparing(Message):
    text: str


@dataclass
class StepShown(Message):
    """The pane moved to step `index` (from 0); `ready`: its place is built already."""

    index: int
    ready: bool


class PlaceWanted(Message):
    """The student asked for this step's place (g)."""


def plain(text: str, ascii_only: bool) -> str:
    """A lesson's text; in ASCII mode, characters outside ASCII shown as '?'."""
    return text.encode("ascii", "replace").decode() if ascii_only else text


def verdict_text(verdict: Verdict, ascii_only: bool) -> str:
    mark = ("[right] " if verdict.right else "[not yet] ") if ascii_only else (
        "✓ " if verdict.right else "✗ ")
    return mark + plain(verdict.feedback, ascii_only) + (
        f" (the model's answer: {verdict.answer})" if verdict.right else "")


class LessonPane(Vertical):
    """The lesson's current step: a title line, the text, the question and the feedback
    (scrolling as one), and the answer box under them."""

    BINDINGS = PANE_BINDINGS
    SCOPED_CSS = False  # the ASCII rule reads the App's class, outside this widget
    DEFAULT_CSS = """
    LessonPane { height: 1fr; }
    LessonPane #lesson-title { height: auto; padding: 0 1; text-style: bold; }
    LessonPane #lesson-body { height: 1fr; border: round $primary; padding: 0 1; }
    App.-ascii LessonPane #lesson-body { border: ascii $primary; }
    LessonPane #lesson-body Markdown { margin: 0; padding: 0; }
    LessonPane #lesson-question { height: auto; margin-top: 1; }
    LessonPane #lesson-feedback { height: auto; }
    LessonPane #lesson-answer { display: none; }
    LessonPane #lesson-answer.-asking { display: block; }
    """

    def __init__(self, run: LessonRun, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lesson_run = run
        self.ready: set[int] = {i for i in range(run.count) if run.is_ready(i)}
        self.feedback = ""
        self.drawn: int | None = None  # the step on screen

    def compose(self) -> ComposeResult:
        yield Static(id="lesson-title")
        with VerticalScroll(id="lesson-body"):
            yield Markdown(id="lesson-text")
            yield Static(id="lesson-question")
            yield Static(id="lesson-feedback")
        yield Input(id="lesson-answer", placeholder="your answer, then Enter (Esc: cancel)")

    def on_mount(self) -> None:
        self.show_step()

    def focus_body(self) -> None:
        """The focus on the text: arrows and PgUp/PgDn scroll a long step; n, p, g, a work."""
        self.query_one("#lesson-body").focus()

    # -- drawing ---------------------------------------------------------------------------------
    @property
    def ascii(self) -> bool:
        return bool(getattr(self.app, "ascii", False))

    def show_step(self) -> None:
        """Draw the run's current step (after the run moved, here or elsewhere)."""
        run, step = self.lesson_run, self.lesson_run.step
        title = f"{run.lesson.title}: step {run.index + 1}/{run.count}"
        self.query_one("#lesson-title", Static).update(
            Text(plain(title + (f" - {step.title}" if step.title else ""), self.ascii),
                 overflow="fold"))
        self.query_one("#lesson-text", Markdown).update(plain(step.text, self.ascii))
        self.feedback = ""
        self.drawn = run.index
        self._draw_question()
        self.query_one("#lesson-body").scroll_home(animate=False)
        if run.index not in self.ready:  # after the step's text is drawn
            self.call_after_refresh(self.prepare, run.index)

    def _draw_question(self, waiting: str | None = None) -> None:
        run, text = self.lesson_run, Text()
        step = run.step
        if step.question is not None:
            text.append("Question: ", style="bold")
            text.append(plain(step.question.ask, self.ascii) + "\n")
            if run.index in self.ready:
                _, choices = run.expected()
                for number, label in enumerate(choices or [], start=1):
                    text.append(f"  {number}  {label}\n")
                text.append("a: answer" + (" (a label or its number)" if choices else ""),
                            style="dim")
        if waiting:
            text.append(("\n" if text else "") + waiting, style="italic")
        self.query_one("#lesson-question", Static).update(text)
        self.query_one("#lesson-feedback", Static).update(Text(self.feedback))

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
        message.stop()
        self._draw_question(message.text)

    def on_step_ready(self, message: StepReady) -> None:
        """Draw the step's choices; the message goes on up (the explorer moves there)."""
        if message.error:
            self.feedback = message.error
            self._draw_question()
            return
        self.ready.add(message.index)
        if message.index == self.lesson_run.index:
            self._draw_question()

    # -- actions ---------------------------------------------------------------------------------
    def action_step(self, delta: int) -> None:
        run = self.lesson_run
        moved = run.next() if delta > 0 else run.previous()
        if moved:
            self.action_close_answer()
            self.show_step()
            self.post_message(StepShown(run.index, run.index in self.ready))
        else:
            self.notify("that was the last step" if delta > 0 else "this is the first step",
                        timeout=3)

    def action_place(self) -> None:
        if self.lesson_run.index not in self.ready:
            self.notify("this step is still being prepared", timeout=3)
            return
        self.post_message(PlaceWanted())

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

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """Esc cancels an answer being typed; otherwise it is the screen's (back)."""
        if action == "close_answer":
            return self.query_one("#lesson-answer", Input).has_class("-asking")
        return True

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.feedback = verdict_text(self.lesson_run.answer(event.value), self.ascii)
        self.action_close_answer()
        self._draw_question()

    def action_close_answer(self) -> None:
        box = self.query_one("#lesson-answer", Input)
        if box.has_class("-asking"):
            box.remove_class("-asking")
            self.focus_body()
