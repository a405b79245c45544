"""Running a lesson, without Textual: which step is shown, its place as an explorer session,
the student's answers judged against the computed ones, and progress kept per user.

    run = LessonRun.open("attention")         # a built-in name or a lesson file (checked first)
    shown = run.shown()                       # resolve the step's place (may train in place)
    session = run.session()                   # a Session moved to that place, for the explorer
    verdict = run.answer("1")                 # right or not, with the lesson's feedback
    run.next(); run.previous()                # the step is saved to the progress file

Progress lives in `$XDG_DATA_HOME/tui-tfs/lessons.json` (default `~/.local/share/tui-tfs`):
one step number per lesson, so a student who comes back resumes where they were.
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from engine.maths.models import build_model
from scenarios.lessons import (ANSWERS, Lesson, Shown, Step, Worlds, builtin_lessons,
                               compute_answer, find_lesson, judge, read_lesson, resolve_place,
                               walk_lesson)

from .session import Session, ViewState

PROGRESS_FILE = "lessons.json"


class LessonNotFound(ValueError):
    """No built-in lesson by that name and no such file; the message says what to do."""


@dataclass(frozen=True)
class Verdict:
    right: bool
    feedback: str  # the lesson's `right` or `wrong` text (Markdown), or a plain default
    answer: str  # the computed answer as shown to the student (after they answered)


def data_dir(env: dict[str, str] | None = None) -> Path:
    """Where tui-tfs keeps a user's files: $XDG_DATA_HOME/tui-tfs, else ~/.local/share/tui-tfs."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tui-tfs"


class Progress:
    """The step each lesson was left at, in one small JSON file; a damaged file counts as
    empty (progress is a convenience, never a reason not to start)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or data_dir() / PROGRESS_FILE

    def _load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool)}

    def step_of(self, key: str) -> int:
        """The step (from 1) the lesson was left at, or 1."""
        return max(1, self._load().get(key, 1))

    def save(self, key: str, step: int) -> None:
        data = self._load()
        data[key] = step
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            temporary.replace(self.path)  # a crash mid-write leaves the old file whole
        except OSError:
            pass  # a read-only home: the lesson still runs, it just will not resume


class LessonRun:
    """One student's walk through one lesson; see the module docstring."""

    def __init__(self, lesson: Lesson, key: str, worlds: Worlds | None = None,
                 progress: Progress | None = None, ascii: bool = False) -> None:
        self.lesson = lesson
        self.key = key  # the lesson's name in the progress file: built-in name or absolute path
        self.worlds = worlds or Worlds()
        self.progress = progress or Progress()
        self.ascii = ascii
        self.index = min(self.progress.step_of(key), len(lesson.steps)) - 1
        self.resumed = self.index > 0  # opened at a step other than the first
        self._shown: dict[int, Shown] = {}
        self._building = threading.Lock()  # two panes (screen, explorer) may ask at once

    @classmethod
    def open(cls, name_or_path: str, worlds: Worlds | None = None,
             progress: Progress | None = None, ascii: bool = False, check: bool = True
             ) -> LessonRun:
        """A built-in lesson by name or a lesson file; LessonNotFound, or LessonError with every
        problem when `check` (walking every step first: seconds when a step trains)."""
        path = find_lesson(name_or_path)
        if path is None:
            raise LessonNotFound(f"{name_or_path}: no such file or built-in lesson; tui-tfs "
                                 f"lesson lists the built-in ones")
        lesson = read_lesson(path)
        worlds = worlds or Worlds()
        if check:
            walk_lesson(lesson, worlds)
        names = {p.resolve(): name for name, p in builtin_lessons()}
        key = names.get(path.resolve(), str(path.resolve()))
        return cls(lesson, key, worlds, progress, ascii)

    # -- where we are ----------------------------------------------------------------------------
    @property
    def step(self) -> Step:
        return self.lesson.steps[self.index]

    @property
    def count(self) -> int:
        return len(self.lesson.steps)

    def go(self, index: int) -> bool:
        """Move to step `index` (from 0); False at either end. The step is saved."""
        if not 0 <= index < self.count or index == self.index:
            return False
        self.index = index
        self.progress.save(self.key, index + 1)
        return True

    def next(self) -> bool:
        return self.go(self.index + 1)

    def previous(self) -> bool:
        return self.go(self.index - 1)

    # -- what the step shows ---------------------------------------------------------------------
    def shown(self, index: int | None = None) -> Shown:
        """The step's place resolved (building or training its model the first time)."""
        index = self.index if index is None else index
        with self._building:  # a second thread waits, then finds the step built
            if index not in self._shown:  # PlaceError etc. only for a lesson opened unchecked
                self._shown[index] = resolve_place(self.lesson.steps[index].place,
                                                   self.lesson.path.parent, self.worlds)
        return self._shown[index]

    def is_ready(self, index: int | None = None) -> bool:
        """Whether the step's place is built already (shown() returns at once)."""
        return (self.index if index is None else index) in self._shown

    def session(self) -> Session:
        """A new explorer session at this step's place, on a copy of the step's model (the
        student may train it in the explorer; the lesson's model stays as the lesson made it)."""
        shown = self.shown()
        model = build_model(shown.model.config)
        model.load_state_dict(shown.model.state_dict())
        model.eval()
        session = Session(shown.scenario, model, _loss_like(shown.loss_fn), ascii=self.ascii)
        session.record(shown.trace.batch, f"lesson {self.lesson.name}, step "
                                          f"{self.index + 1}: {shown.input_text!r}")
        session.goto(shown.event.index)
        session.view = dataclasses.replace(session.view, **view_choices(shown))
        session.shown_view = shown.view
        return session

    # -- the question ----------------------------------------------------------------------------
    def expected(self) -> tuple[float | str, list[str] | None]:
        """(the computed answer, the labels offered) of this step's question."""
        return compute_answer(self.step, self.shown())

    def answer(self, given: str) -> Verdict:
        """Judge what the student typed (for a choice: the label, or its number from 1 when
        no label reads the same)."""
        question = self.step.question
        value, choices = self.expected()
        text = given.strip()
        if (choices is not None and text not in choices and text.isdigit()
                and 1 <= int(text) <= len(choices)):
            text = choices[int(text) - 1]
        right = judge(self.step, value, text)
        shown = value if isinstance(value, str) else f"{value:.4g}"
        if right:
            return Verdict(True, question.right or "Right.", shown)
        return Verdict(False, question.wrong or "Not quite: look again.", shown)

    def answer_kind(self) -> str | None:
        question = self.step.question
        return None if question is None else ANSWERS[question.answer].kind


def view_choices(shown: Shown) -> dict[str, object]:
    """The explorer's ViewState fields for a step's place (indices from 0)."""
    choices = {"tensor": shown.tensor, "gradient": shown.gradient, "item": shown.item,
               "head": shown.head, "stage": shown.stage, "query": shown.query,
               "query_chosen": True, "numbers": shown.numbers,
               "temperature": shown.temperature, "attention_path": shown.attention_path}
    known = {f.name for f in dataclasses.fields(ViewState)}
    return {k: v for k, v in choices.items() if k in known}


def _loss_like(loss_fn):
    return type(loss_fn)(loss_fn.ignore_id, loss_fn.label_smoothing)
