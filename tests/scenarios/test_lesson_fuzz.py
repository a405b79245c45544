"""Generated broken lesson files: each ends in one problem (two where one damage leaves two
gaps), one line each, with a line number inside the file and a fix, never in a traceback. The
files are a good lesson with one random damage: a line deleted, replaced by noise or
duplicated, a key added with a random value, a value swapped, the file cut short, or bytes
that are not UTF-8."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios.lessons import Worlds, check_file
from scenarios.lessons.keys import LESSON_KEYS, QUESTION_KEYS, STEP_KEYS

BASE = """\
[lesson]
title = "Masks"
summary = "The look-ahead mask"
scenario = "reverse"
input = ["3141", "27"]

[[step]]
title = "A triangle"
text = \"\"\"
Row *t* sees keys 1 to *t*.
\"\"\"
event = "decoder.blocks.0.self_attn.mask"
view = "attention"
stage = "masked"
head = 2
query = 2

[step.question]
ask = "How many keys are hidden from row 2?"
answer = "hidden_keys"
tolerance = 0

[[step]]
text = "The weights."
event = "encoder.blocks.0.self_attn.softmax"
item = 2

[step.question]
ask = "Which key does row 2 look at most?"
answer = "top_key"
choices = "keys"
right = "Yes."
wrong = "No."
"""
LINES = BASE.splitlines()
KEYS = sorted((set(LESSON_KEYS) | set(STEP_KEYS) | set(QUESTION_KEYS)) - {"train"}) + [
    "colour", "steps", "lesson", "question.ask", "question"]
VALUES = st.one_of(
    st.integers(-3, 40).map(str), st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: repr(f).replace("inf", "inf").replace("nan", "nan")),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(max_size=12).map(lambda t: '"' + t.replace("\\", "").replace('"', "") + '"'),
    st.sampled_from(['"weights"', '"softmax"', '"decoder.blocks.9.self_attn"', '["a", 1]',
                     '[]', '{ask = "x"}', '"keys"', '["yes", "no"]', '"no_scaling"',
                     '["no_causal_mask"]', '"backward"', '"attention"', '"top_key"',
                     '"loss.softmax"', '"tiny-lm"', '"missing.safetensors"', '"""x"""']))


@st.composite
def damaged(draw) -> bytes:
    lines = list(LINES)
    at = draw(st.integers(0, len(lines) - 1))
    how = draw(st.sampled_from(["delete", "noise", "duplicate", "add", "swap", "cut", "bytes"]))
    if how == "delete":
        del lines[at]
    elif how == "noise":
        lines[at] = draw(st.text(max_size=30))
    elif how == "duplicate":
        lines.insert(at, lines[at])
    elif how == "add":
        lines.insert(at, f"{draw(st.sampled_from(KEYS))} = {draw(VALUES)}")
    elif how == "swap":
        keyed = [i for i, line in enumerate(lines) if " = " in line and not line.startswith("text")]
        i = draw(st.sampled_from(keyed))
        lines[i] = f"{lines[i].split(' = ')[0]} = {draw(VALUES)}"
    text = "\n".join(lines) + "\n"
    data = text.encode("utf-8")
    if how == "cut":
        data = data[:draw(st.integers(0, len(data)))]
    elif how == "bytes":
        spot = draw(st.integers(0, len(data)))
        data = data[:spot] + draw(st.binary(min_size=1, max_size=4)) + data[spot:]
    return data


@pytest.fixture(scope="module")
def worlds():
    return Worlds()


def test_the_base_lesson_is_good(tmp_path, worlds):
    path = tmp_path / "base.toml"
    path.write_text(BASE, encoding="utf-8")
    assert check_file(path, worlds) == []


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=damaged())
def test_a_damaged_lesson_gives_one_line_problems_with_line_numbers(tmp_path, worlds, data):
    path = tmp_path / "damaged.toml"
    path.write_bytes(data)
    problems = check_file(path, worlds)  # never raises
    # one damage, one message; two at most where it leaves two gaps (a file cut after
    # its title line has neither a title nor steps)
    assert len(problems) <= 2, [p.format("f") for p in problems]
    n_lines = max(1, data.count(b"\n") + (0 if data.endswith(b"\n") else 1))
    for problem in problems:
        line = problem.format(str(path))
        assert 1 <= problem.line <= n_lines, line
        assert line.startswith(f"{path}:{problem.line}: ")
        assert "\n" not in line and "Traceback" not in line
        assert problem.message.strip() and problem.fix.strip()


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=damaged())
def test_the_real_command_on_damaged_files_exits_2_with_one_line_each(tmp_path, data):
    """A sample through `tui-tfs lesson check` itself: exit 0 or 2, never a traceback."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "damaged.toml").write_bytes(data)
    result = subprocess.run([sys.executable, "-m", "tui_tfs.cli", "lesson", "check",
                             "damaged.toml"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": str(root)})
    assert "Traceback" not in result.stderr
    if result.returncode == 0:
        assert result.stdout.startswith("damaged.toml: good: ")
    else:
        assert result.returncode == 2
        lines = result.stderr.splitlines()
        assert 1 <= len(lines) <= 2 and all(line.startswith("damaged.toml:") for line in lines)
