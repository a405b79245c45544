"""Lessons: a guided walk through the explorer, written by a teacher as a TOML file.

A lesson is a sequence of steps. Each step has Markdown text, a place (which model, which
input, which event and view, which head ...) and optionally a question whose answer is
computed from the model the step shows, never written in the file:

    [lesson]
    title = "Attention on a few tokens"
    summary = "Where each output digit looks in the input"     # one line for the list
    scenario = "reverse"        # the place step 1 starts from (any place key fits here)
    input = "3141"

    [[step]]
    title = "The weights"
    text = \"\"\"
    Each row is one query; its weights add up to **1**.
    \"\"\"
    event = "decoder.blocks.0.cross_attn.softmax"
    view = "attention"
    head = 1                    # heads, items, rows and keys count from 1, as on screen
    query = 1

    [step.question]
    ask = "Which input digit does this row look at most?"
    answer = "top_key"          # an answer function (answers.py); computed at this place
    choices = "keys"            # the labels offered: a list, or keys | vocab | heads
    right = "Yes: the brightest cell of the row."
    wrong = "Find the brightest cell of row 1."

A number question has `tolerance = 0.05` instead of choices. Each step starts from the place
of the step before and changes only the keys it names. Place keys: scenario or checkpoint,
train (the model trained in place to step N), breaks (switches on), input or example, event
(dotted path) or op, phase, view, tensor, gradient, numbers, item, head, stage, query (in the
temperature view, left out: the row that is neither uniform nor saturated), temperature.

Modules: `format` (TOML -> Lesson, the checks that need no model), `keys` (each key's type,
meaning and allowed values), `toml_lines` (line numbers),
`world` (the model a place names, trained in place), `places` (a place resolved against the
trace), `answers` (the answer functions), `check` (walking a lesson: every place resolves,
every answer is computed), `course` (the built-in lessons). Nothing here imports the UI.
"""
from __future__ import annotations

from .answers import ANSWERS, AnswerError
from .check import WalkedStep, check_file, compute_answer, judge, walk_lesson
from .course import builtin_lessons, find_lesson
from .format import Lesson, Question, Step, read_lesson
from .places import PlaceError, Shown, resolve_place
from .problems import LessonError, Problem
from .world import ModelKey, Worlds

__all__ = ["ANSWERS", "AnswerError", "Lesson", "LessonError", "ModelKey", "PlaceError", "Problem",
           "Question", "Shown", "Step", "WalkedStep", "Worlds", "builtin_lessons", "check_file",
           "compute_answer", "find_lesson", "judge", "read_lesson", "resolve_place",
           "walk_lesson"]
