"""Checking a lesson against the models it shows: every step's place resolves, every question's
answer is computed, and a choice answer is among the choices offered.

    walked = walk_lesson(read_lesson(path))      # LessonError lists every problem
    for step in walked: step.shown, step.answer  # what each step shows, its computed answer

`check_file` is what `tui-tfs lesson check FILE` runs: the problems, each with its line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from engine.training.checkpoint import CheckpointError

from .answers import ANSWERS, CHOICE, AnswerError, choice_set
from .format import Lesson, Step, read_lesson
from .places import PlaceError, Shown, resolve_place
from .problems import LessonError, Problem
from .world import Worlds

PLACE_MODEL_KEYS = ("scenario", "checkpoint", "breaks", "train")


@dataclass
class WalkedStep:
    step: Step
    shown: Shown
    answer: float | str | None  # the computed answer of its question (None: no question)
    choices: list[str] | None  # the labels offered (a choice question)


def check_file(path, worlds: Worlds | None = None) -> list[Problem]:
    """Every problem of the lesson at `path` (empty: it is good)."""
    try:
        walk_lesson(read_lesson(path), worlds)
    except LessonError as error:
        return error.problems
    return []


def walk_lesson(lesson: Lesson, worlds: Worlds | None = None) -> list[WalkedStep]:
    """Resolve every step and compute every answer; LessonError lists all that fail."""
    from scenarios import ScenarioError

    worlds = worlds or Worlds()
    walked: list[WalkedStep] = []
    problems: list[Problem] = []
    reported: set[tuple[int | None, str]] = set()  # (line, key) already reported
    lesson_dir = lesson.path.parent
    for step in lesson.steps:
        try:
            shown = resolve_place(step.place, lesson_dir, worlds)
        except PlaceError as error:
            if (step.origin.get(error.key), error.key) in reported:
                continue  # an inherited bad value: reported once, at the line that set it
            reported.add((step.origin.get(error.key), error.key))
            problems.append(Problem(step.origin.get(error.key, step.line),
                                    f"step {step.number}: {error}", error.fix))
            continue
        except (ScenarioError, CheckpointError) as error:
            line = min((step.origin[k] for k in PLACE_MODEL_KEYS if k in step.origin),
                       default=step.line)
            if (line, "model") in reported:
                continue
            reported.add((line, "model"))
            problems.append(Problem(line, f"step {step.number}: the model cannot be built: "
                                    f"{error}", "fix the scenario or checkpoint named here"))
            continue
        answer, choices = None, None
        if step.question is not None:
            try:
                answer, choices = compute_answer(step, shown)
            except AnswerError as error:
                lines = step.question.lines
                line = lines.get(error.key or "answer", step.question.line)
                problems.append(Problem(line, f"step {step.number}: "
                                        f"{step.question.answer}: {error}",
                                        "move the step's place, or ask another answer function"))
                continue
        walked.append(WalkedStep(step, shown, answer, choices))
    if problems:
        raise LessonError(str(lesson.path), problems)
    return walked


def compute_answer(step: Step, shown: Shown) -> tuple[float | str, list[str] | None]:
    """(the answer of the step's question at `shown`, the labels offered or None)."""
    question = step.question
    function = ANSWERS[question.answer]
    if function.needs == "attention" and shown.attention_path is None:
        raise AnswerError("the step's place is in no attention layer: set event to an "
                          "attention op (e.g. op = \"softmax\") or view = \"attention\"")
    try:
        value = function.compute(shown, question.args)
    except (KeyError, IndexError, StopIteration) as error:  # a place the function cannot read
        raise AnswerError(f"cannot be computed at this place ({error!r})") from None
    if function.kind != CHOICE:
        if not math.isfinite(value):
            raise AnswerError(f"the computed answer is {value}, not a finite number")
        return value, None
    choices = question.choices
    labels = choice_set(choices, shown) if isinstance(choices, str) else list(choices)
    if value not in labels:
        raise AnswerError(f"the computed answer {value!r} is not among the choices "
                          f"{labels[:12]}", key="choices")
    return value, labels


def judge(step: Step, answer: float | str, given: str) -> bool:
    """Whether `given` (what the student typed or picked) is right for the computed `answer`."""
    question = step.question
    if ANSWERS[question.answer].kind == CHOICE:
        return given.strip() == answer
    try:
        number = float(given)
    except ValueError:
        return False
    return abs(number - float(answer)) <= (question.tolerance or 0.0)
