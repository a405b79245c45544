"""Reading a lesson file: TOML in, a `Lesson` of `Step`s out, or every problem with its line.

This module checks what can be checked without a model: the TOML itself, the tables and keys,
each value's type and range, that a question names a known answer function with the choices
or tolerance its kind needs. `check.py` then builds the model each step names and checks the
places and answers against it. The format is documented in `scenarios/lessons/__init__.py`.
"""
from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .answers import ANSWERS, ARG_KEYS, CHOICE, REQUIRED_ARGS
from .keys import (EITHER, LESSON_KEYS, MAX_FILE_BYTES, PLACE_KEYS, QUESTION_KEYS, STEP_KEYS,
                   is_a, kind_name, short, value_problem)
from .problems import LessonError, Problem
from .toml_lines import KeyLines

@dataclass
class Question:
    ask: str
    answer: str  # a key of answers.ANSWERS
    args: dict[str, object]  # the answer function's extra keys (key, row, stat ...)
    choices: list[str] | str | None  # labels, the name of a computed set, or None (a number)
    tolerance: float | None
    right: str
    wrong: str
    line: int  # its [step.question] header
    lines: dict[str, int] = field(default_factory=dict)  # key -> line, for its problems


@dataclass
class Step:
    number: int  # from 1
    title: str
    text: str  # Markdown
    place: dict[str, object]  # every place key in force at this step (inherited and own)
    origin: dict[str, int]  # place key -> the line that set it (this step's or an earlier one)
    question: Question | None
    line: int  # its [[step]] header


@dataclass
class Lesson:
    name: str  # the file's stem: what `tui-tfs lesson NAME` opens
    title: str
    summary: str
    path: Path
    steps: list[Step] = field(default_factory=list)


def read_lesson(path: str | Path) -> Lesson:
    """The lesson in `path`, or LessonError with every problem this module can find."""
    path = Path(path)
    problems: list[Problem] = []
    text = _read_text(path, problems)
    lesson = None if text is None else parse_lesson(text, path, problems)
    if problems or lesson is None:
        raise LessonError(str(path), problems)
    return lesson


def _read_text(path: Path, problems: list[Problem]) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            problems.append(Problem(1, f"the file is {path.stat().st_size:,} bytes",
                                    f"a lesson is text of at most {MAX_FILE_BYTES:,} bytes"))
            return None
        data = path.read_bytes()
    except OSError as error:
        problems.append(Problem(1, f"cannot read it ({error.strerror or error})",
                                "check the path: tui-tfs lesson lists the built-in lessons"))
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        problems.append(Problem(line, f"byte {data[error.start]:#04x} is not UTF-8 text",
                                "save the file as UTF-8"))
        return None


def parse_lesson(text: str, path: Path, problems: list[Problem]) -> Lesson | None:
    """Parse and check `text`; append every problem found to `problems`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        problems.append(_toml_problem(str(error), text))
        return None
    lines = KeyLines.scan(text)
    stray = [name for name in data if name not in ("lesson", "step")]
    loose = [name for name in stray if name in LESSON_KEYS]
    if loose:  # [lesson] left out: its keys stand before any table; read them as its keys
        problems.append(Problem(lines.of(loose[0]), f"{', '.join(loose)} stand outside any table",
                                "put [lesson] on the line above them"))
        if "lesson" not in data:
            data = {"lesson": {k: data[k] for k in loose}, **data}
    for name in stray:
        if name not in loose:
            problems.append(Problem(lines.of(name), f"unknown table or key {name!r}",
                                    _did_you_mean(name, ("lesson", "step"), "start the file with "
                                                  "[lesson], then one [[step]] per step")))
    head = data.get("lesson")
    steps = data.get("step")
    if not isinstance(steps, list) or not steps:
        steps = []
    if not isinstance(head, dict) and not steps:
        problems.append(Problem(1, "the file has no [lesson] table and no [[step]]",
                                "write [lesson] with title = \"...\" and scenario = \"...\", then "
                                "one [[step]] per step with text = \"...\""))
        return None
    misspelt = {name for name in stray if name not in loose}
    if not isinstance(head, dict) and _near(misspelt, "lesson"):
        head = None  # said as the misspelt table's problem
    elif not isinstance(head, dict):
        problems.append(Problem(1, "no [lesson] table", "start the file with [lesson] and "
                                "title = \"...\" (and the first place: scenario, input)"))
        head = None
    elif not steps and not _near(misspelt, "step"):
        problems.append(Problem(lines.of("lesson"), "the lesson has no steps",
                                "add one [[step]] table per step, each with text = \"...\""))
    head_bad = _check_keys(head or {}, LESSON_KEYS, ("lesson",), lines, problems, "[lesson]")
    title = (head or {}).get("title")
    if head is None:
        head, title = {}, path.stem
    elif "title" in head_bad or _near(head_bad, "title"):
        title = path.stem
    if not isinstance(title, str) or not title.strip():
        problems.append(Problem(lines.of("lesson"), "[lesson] has no title",
                                "add title = \"...\" under [lesson]"))
        title = path.stem
    summary = head.get("summary") if isinstance(head.get("summary"), str) else ""
    lesson = Lesson(path.stem, title, summary, path)
    _one_of_each_pair(head, head_bad, ("lesson",), lines, problems, "[lesson]")
    place = {k: v for k, v in head.items() if k in PLACE_KEYS}
    origin = {k: lines.of("lesson", k) for k in place}
    for i, raw in enumerate(steps):
        if not isinstance(raw, dict):
            problems.append(Problem(lines.of("step"), "step must be a table",
                                    "write each step as a [[step]] table"))
            continue
        where = ("step", i)
        asked = [k for k in raw if k not in STEP_KEYS and k in QUESTION_KEYS]
        if asked:  # [step.question] left out: its keys land in the step
            problems.append(Problem(lines.of(*where, asked[0]), f"{', '.join(asked)} in step "
                                    f"{i + 1} belong to a question",
                                    "put [step.question] on the line above them"))
            raw = {k: v for k, v in raw.items() if k not in asked}
        bad = _check_keys(raw, STEP_KEYS, where, lines, problems, f"step {i + 1}")
        _one_of_each_pair(raw, bad, where, lines, problems, f"step {i + 1}")
        own = {k: v for k, v in raw.items() if k in PLACE_KEYS}
        for pair in EITHER:
            for key in pair:
                if key in own:
                    for other in pair:
                        if other != key:
                            place.pop(other, None)
                            origin.pop(other, None)
        if any(k in own for k in ("event", "op", "phase")) and "tensor" not in own:
            place.pop("tensor", None)  # a tensor is named by its event: a new event, its own
            origin.pop("tensor", None)
        place.update(own)
        origin.update({k: lines.of(*where, k) for k in own})
        text_value = raw.get("text", "")
        if "text" not in bad and not _near(bad, "text") and (
                not isinstance(text_value, str) or not text_value.strip()):
            problems.append(Problem(lines.of(*where), f"step {i + 1} has no text",
                                    "add text = \"\"\"...\"\"\" (Markdown) to the step"))
        question = None
        if isinstance(raw.get("question"), dict):
            question = _question(raw["question"], where + ("question",), lines, problems, i)
        lesson.steps.append(Step(i + 1, raw.get("title") if isinstance(raw.get("title"), str)
                                 else "", text_value if isinstance(text_value, str) else "",
                                 dict(place), dict(origin), question, lines.of(*where)))
    # said once: the steps after it inherit the gap; not at all when [lesson] itself is broken
    modelless = any(p.message.startswith(("no [lesson]", "unknown table", "scenario",
                                          "checkpoint")) or "outside any table" in p.message
                    or "unknown key" in p.message and "[lesson]" in p.message for p in problems)
    for step in lesson.steps:
        if not any(k in step.place for k in ("scenario", "checkpoint")) and not modelless:
            modelless = True  # the steps after it inherit the same gap: said once
            problems.append(Problem(step.line, f"step {step.number} has no model",
                                    "add scenario = \"reverse\" (or checkpoint = \"...\") under "
                                    "[lesson] or in the step"))
    return lesson


def _check_keys(table: dict, known: dict[str, tuple[type, str]], where: tuple, lines: KeyLines,
                problems: list[Problem], label: str) -> set[str]:
    """Unknown keys, wrong types and out-of-range values of one table; returns the keys at
    fault, so that what follows from them is not reported again."""
    bad: set[str] = set()
    for key, value in table.items():
        line = lines.of(*where, key)
        bad.add(key)
        if key not in known:
            problems.append(Problem(line, f"unknown key {key!r} in {label}",
                                    _did_you_mean(key, known, "keys are " + ", ".join(known))))
            continue
        kind, meaning = known[key]
        if not is_a(value, kind):
            problems.append(Problem(line, f"{key} = {short(value)} in {label} is not "
                                    f"{kind_name(kind)}", f"{key} is {meaning}"))
            continue
        message = value_problem(key, value)
        if message:
            problems.append(Problem(line, f"{key} = {short(value)} in {label} {message}",
                                    f"{key} is {meaning}"))
            continue
        bad.discard(key)
    return bad


def _one_of_each_pair(table: dict, bad: set[str], where: tuple, lines: KeyLines,
                      problems: list[Problem], label: str) -> None:
    """scenario or checkpoint, input or example, event or op: one of each in a table."""
    for first, second in EITHER:
        if first in table and second in table and not {first, second} & bad:
            problems.append(Problem(lines.of(*where, second), f"{label} names both {first} and "
                                    f"{second}", f"keep one of {first} and {second}"))


def _near(bad: set[str], key: str) -> bool:
    """Whether one of the keys at fault looks like a misspelt `key`."""
    return bool(difflib.get_close_matches(key, [k for k in bad if k != key], n=1))


def _question(raw: dict, where: tuple, lines: KeyLines, problems: list[Problem],
              index: int) -> Question | None:
    label = f"step {index + 1}'s question"
    bad = _check_keys(raw, QUESTION_KEYS, where, lines, problems, label)
    line = lines.of(*where)
    ask, answer = raw.get("ask"), raw.get("answer")
    if ask is None and answer is None and not bad:
        problems.append(Problem(line, f"{label} has no ask and no answer",
                                "add ask = \"...\" and answer = one of " + ", ".join(ANSWERS)))
        return None
    if "ask" not in bad and not _near(bad, "ask") and (not isinstance(ask, str) or
                                                      not ask.strip()):
        problems.append(Problem(line, f"{label} has no ask", "add ask = \"...\" (the question)"))
    if not isinstance(answer, str):
        if "answer" not in bad and not _near(bad, "answer"):
            problems.append(Problem(line, f"{label} has no answer function",
                                    "add answer = one of " + ", ".join(ANSWERS)))
        return None
    if answer not in ANSWERS:
        problems.append(Problem(lines.of(*where, "answer"), f"unknown answer function {answer!r}",
                                _did_you_mean(answer, ANSWERS, "answer functions are "
                                              + ", ".join(ANSWERS))))
        return None
    function = ANSWERS[answer]
    choices, tolerance = raw.get("choices"), raw.get("tolerance")
    if function.kind == CHOICE and choices is None and "choices" not in bad and not _near(
            bad, "choices"):
        problems.append(Problem(line, f"{answer} gives a label but {label} has no choices",
                                "add choices = [\"yes\", \"no\"] (the labels offered) or "
                                "choices = \"keys\""))
    if function.kind != CHOICE and choices is not None and "choices" not in bad:
        problems.append(Problem(lines.of(*where, "choices"), f"{answer} gives a number, not "
                                f"one of choices", "remove choices and add tolerance = ..."))
    if function.kind != CHOICE and tolerance is None and "tolerance" not in bad and not _near(
            bad, "tolerance"):
        problems.append(Problem(line, f"{answer} gives a number but {label} has no tolerance",
                                "add tolerance = 0.01 (how far off still counts as right)"))
    for key in raw:
        if key in ARG_KEYS and key not in function.args and key not in bad:
            problems.append(Problem(lines.of(*where, key), f"{answer} reads no {key!r}",
                                    f"{answer} reads " + (", ".join(function.args) or
                                                          "only the place")))
    for key in REQUIRED_ARGS.get(answer, ()):
        if key not in raw:
            problems.append(Problem(line, f"{answer} needs {key!r}",
                                    f"add {key} = ... ({function.args[key][1]})"))
    args = {k: v for k, v in raw.items() if k in function.args}
    return Question(ask if isinstance(ask, str) else "", answer, args,
                    choices if isinstance(choices, (list, str)) else None,
                    float(tolerance) if is_a(tolerance, float) else None,
                    raw.get("right", "") if isinstance(raw.get("right"), str) else "",
                    raw.get("wrong", "") if isinstance(raw.get("wrong"), str) else "", line,
                    {k: lines.of(*where, k) for k in raw})


def _toml_problem(message: str, text: str) -> Problem:
    """tomllib's "Expected ... (at line 3, column 5)" as a Problem on line 3 ("at end of
    document": the last line)."""
    found = re.search(r"\(at line (\d+), column (\d+)\)", message)
    reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
    line = int(found.group(1)) if found else max(1, len(text.splitlines()))
    column = f" (column {found.group(2)})" if found else ""
    return Problem(line, f"not valid TOML: {reason}{column}",
                   "write one key = value per line, text in quotes (\"\"\" for several lines), "
                   "tables as [lesson] and [[step]]")


def _did_you_mean(name: str, known, otherwise: str) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f"did you mean {close[0]!r}?" if close else otherwise
