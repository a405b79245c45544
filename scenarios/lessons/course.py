"""The built-in course: the lesson files in `course/`, in order (`NN-name.toml`).

    builtin_lessons()          # [(name, path)], in the course's order
    find_lesson("attention")   # the path of a built-in lesson by name, or of a file
"""
from __future__ import annotations

import re
from pathlib import Path

COURSE = Path(__file__).parent / "course"
_NUMBERED = re.compile(r"^(\d+)-(.+)$")


def builtin_lessons() -> list[tuple[str, Path]]:
    """(name, path) of each built-in lesson, in the course's order."""
    found = []
    for path in sorted(COURSE.glob("*.toml")):
        numbered = _NUMBERED.match(path.stem)
        found.append((numbered.group(2) if numbered else path.stem, path))
    return found


def find_lesson(name_or_path: str) -> Path | None:
    """A built-in lesson by name (or number), else the path if it names a file, else None."""
    for i, (name, path) in enumerate(builtin_lessons(), start=1):
        if name_or_path in (name, str(i), path.stem):
            return path
    path = Path(name_or_path).expanduser()
    return path if path.is_file() else None
