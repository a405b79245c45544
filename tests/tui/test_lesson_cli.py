"""`tui-tfs lesson` and `tui-tfs lesson check`, run as the installed command would be."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scenarios.lessons import builtin_lessons, read_lesson

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
[lesson]
title = "Positions"
scenario = "reverse"
input = "31415"

[[step]]
text = "Neighbours are alike."
view = "positional"

[step.question]
ask = "How similar are positions 1 and 2?"
answer = "position_similarity"
position = 2
tolerance = 0.01
"""


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "tui_tfs.cli", "lesson", *args], env=env,
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def test_lesson_lists_the_built_in_course_with_titles():
    result = run()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    course = builtin_lessons()
    assert len(course) >= 12
    for number, (name, path) in enumerate(course, start=1):
        row = next(line for line in lines if line.split()[:2] == [str(number), name])
        assert row.endswith(read_lesson(path).title)
    assert "tui-tfs lesson check FILE" in result.stdout
    assert all(len(line) <= 80 for line in lines[:len(course) + 1])


def test_check_passes_a_good_file(tmp_path):
    (tmp_path / "mine.toml").write_text(GOOD, encoding="utf-8")
    result = run("check", "mine.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("mine.toml: good: 1 step, 1 question, every place found "
                                     "and every answer computed")


def test_check_reports_each_problem_on_one_line_with_its_line_number(tmp_path):
    bad = GOOD.replace('view = "positional"', 'view = "positional"\nhead = 7').replace(
        "tolerance = 0.01\n", "")
    (tmp_path / "bad.toml").write_text(bad, encoding="utf-8")
    result = run("check", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.splitlines() == [
        "bad.toml:11: position_similarity gives a number but step 1's question has no "
        "tolerance; add tolerance = 0.01 (how far off still counts as right)"]
    # with the question fixed, the head is checked against the model: 4 heads
    (tmp_path / "bad.toml").write_text(bad + "tolerance = 0.01\n", encoding="utf-8")
    result = run("check", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "bad.toml:9: step 1: head = 7 is out of range: this place has heads 1 to 4; choose head "
        "from 1 to 4"]


def test_check_of_a_missing_file_or_a_stray_word_is_one_line(tmp_path):
    for args in (("check", "nope.toml"), ("check", "nope.toml", "also.toml"), ("a", "b")):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith("tui-tfs lesson")


def test_check_of_a_built_in_lesson_by_name():
    result = run("check", "masks")
    assert result.returncode == 0, result.stderr
    assert "good: 4 steps, 4 questions" in result.stdout
