"""`tui-tfs lesson`: the built-in course as a list, and `lesson check` (no UI) for teachers.

    tui-tfs lesson                   the built-in lessons, in the course's order, with titles
    tui-tfs lesson check FILE ...    every problem of each file, one line each: FILE:LINE: what; fix
    tui-tfs lesson check             the whole built-in course
    tui-tfs lesson NAME|FILE         the lesson screen (g opens the explorer at a step's place)

Checking builds each model a lesson names (training in place where a step says `train`), so
it takes seconds per trained model; progress goes to stderr, problems to stderr, the verdict
to stdout. Exit 0 when every file is good, 2 when one has a problem.
"""
from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

EXIT_OK, EXIT_USAGE = 0, 2


def list_lessons(console: Console) -> int:
    from scenarios.lessons import builtin_lessons, read_lesson
    from scenarios.lessons.course import COURSE

    rows = [("#", "lesson", "title")]
    for number, (name, path) in enumerate(builtin_lessons(), start=1):
        rows.append((str(number), name, read_lesson(path).title))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for i, (number, name, title) in enumerate(rows):
        line = f"{number:>{widths[0]}}  {name:<{widths[1]}}  {title}".rstrip()
        console.print(Text(line, style="bold" if i == 0 else ""), soft_wrap=True)
    console.print(f"\nThe files are in {COURSE}; write your own in the same form and check it "
                  f"with: tui-tfs lesson check FILE", soft_wrap=True)
    return EXIT_OK


def check_lessons(names: list[str], console: Console) -> int:
    """Check the files (or built-in names) in `names`, or the whole course if none."""
    from scenarios.lessons import Worlds, builtin_lessons, check_file, find_lesson, read_lesson

    paths = [path for _, path in builtin_lessons()] if not names else []
    for name in names:
        path = find_lesson(name)
        if path is None:
            print(f"tui-tfs lesson check: {name}: no such file or built-in lesson; check the "
                  f"path (tui-tfs lesson lists the built-in ones)", file=sys.stderr)
            return EXIT_USAGE
        paths.append(path)
    worlds = Worlds(progress=_progress)
    bad = 0
    for path in paths:
        problems = check_file(path, worlds)
        _clear_progress()
        shown = _shown(path)
        if problems:
            bad += 1
            for problem in problems:
                print(problem.format(shown), file=sys.stderr)
            continue
        lesson = read_lesson(path)
        questions = sum(step.question is not None for step in lesson.steps)
        console.print(f"{shown}: good: {_count(len(lesson.steps), 'step')}, "
                      f"{_count(questions, 'question')}, every place found and every answer "
                      f"computed", soft_wrap=True, highlight=False)
    return EXIT_USAGE if bad else EXIT_OK


def open_lesson(name: str, console: Console, ascii_only: bool | None = None) -> int:
    """The lesson screen on a built-in lesson or a lesson file. The file's format is checked
    first (its problems on stderr, exit 2); its places are built as the student gets to them
    (tui-tfs lesson check builds them all up front)."""
    from scenarios.lessons import LessonError

    from .app import draws_in_browser, wants_ascii
    from .lessons import LessonNotFound, LessonRun

    ascii_only = wants_ascii() if ascii_only is None else ascii_only
    try:
        run = LessonRun.open(name, ascii=ascii_only, check=False)
    except LessonNotFound as error:
        print(f"tui-tfs lesson: {error}", file=sys.stderr)
        return EXIT_USAGE
    except LessonError as error:
        for problem in error.problems:
            print(problem.format(_shown(Path(error.file))), file=sys.stderr)
        return EXIT_USAGE
    for stream_name, stream in (("stdout", sys.stdout), ("stderr", sys.stderr)):
        if not stream.isatty() and not draws_in_browser():
            print(f"tui-tfs lesson: {stream_name} is not a terminal (piped or redirected?); a "
                  f"lesson draws a full screen and needs one: run it without | or >, or use "
                  f"tui-tfs lesson check {name} for text", file=sys.stderr)
            return EXIT_USAGE
    from .lessons_screen import LessonApp

    LessonApp(run, ascii=ascii_only).run()
    return EXIT_OK


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _progress(step: int, total: int) -> None:
    """One updating stderr line while a model trains in place (only on a terminal)."""
    if sys.stderr.isatty() and (step == 1 or step % 10 == 0 or step == total):
        print(f"\r  training a lesson's model: step {step}/{total}", end="", file=sys.stderr,
              flush=True)


def _clear_progress() -> None:
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr, flush=True)
