"""What is wrong with a lesson file: one `Problem` per mistake, each with its line and the fix.

`LessonError` carries every problem found, so a teacher fixes a file in one pass; its message
is the problems one per line, `FILE:LINE: what is wrong; what to do`.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One mistake in a lesson file."""

    line: int  # 1-based line of the file it is on (the nearest enclosing header if unknown)
    message: str  # what is wrong, naming the key and the value
    fix: str  # what to write instead

    def format(self, file: str) -> str:
        return f"{file}:{self.line}: {self.message}; {self.fix}"


class LessonError(ValueError):
    """A lesson that cannot be used: every problem, each with its line and fix."""

    def __init__(self, file: str, problems: list[Problem]):
        self.file = file
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__("\n".join(p.format(file) for p in self.problems))


class AnswerError(ValueError):
    """The answer cannot be computed at this place; the message says why and what to change."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key  # the question's key at fault, if one is (None: the answer function)
