"""Lesson files: what a teacher gets wrong is reported with its line and the fix, and places and
answers are checked against the model the step names (built and traced for real)."""
from __future__ import annotations

import textwrap

import pytest

from scenarios.lessons import LessonError, Worlds, check_file, read_lesson, walk_lesson

GOOD = """\
[lesson]
title = "Masks"
scenario = "reverse"
input = ["31415", "27"]

[[step]]
text = \"\"\"
The decoder's look-ahead mask.
key = not a key, this is text
\"\"\"
event = "decoder.blocks.0.self_attn.mask"
view = "attention"
query = 2

[step.question]
ask = "How many keys are hidden from row 2?"
answer = "hidden_keys"
tolerance = 0

[[step]]
text = "Item 2 has padding."
event = "encoder.blocks.0.self_attn.softmax"
item = 2

[step.question]
ask = "Which key does row 2 look at most?"
answer = "top_key"
choices = "keys"
"""


@pytest.fixture(scope="module")
def worlds():
    return Worlds()


def write(tmp_path, text: str, name: str = "lesson.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(tmp_path, text: str, worlds) -> list[tuple[int, str]]:
    return [(p.line, f"{p.message}; {p.fix}") for p in check_file(write(tmp_path, text), worlds)]


def test_a_good_lesson_walks_and_its_answers_come_from_the_trace(tmp_path, worlds):
    walked = walk_lesson(read_lesson(write(tmp_path, GOOD)), worlds)
    first, second = walked
    # row 2 of a causal map over <s> 3 1 4 1 5 sees two keys of six
    assert first.answer == 4.0
    keep = first.shown.trace.attention("decoder.blocks.0.self_attn", 0, 0, "masked").keep
    assert first.answer == float((~keep[1]).sum())
    # step 2 inherits the scenario, input and query row 2, changes the event and the item
    assert second.shown.item == 1 and second.shown.input_text == "27"
    assert second.shown.query == 1
    weights = second.shown.trace.attention("encoder.blocks.0.self_attn", 0, 1).values[1]
    assert second.answer == second.shown.trace.attention(
        "encoder.blocks.0.self_attn", 0, 1).cols[int(weights.argmax())]
    assert second.choices == ["2", "7", "<pad>"]


@pytest.mark.parametrize("old, new, line, words", [
    ('event = "decoder.blocks.0.self_attn.mask"', 'event = "decoder.blocks.0.self_atn.mask"', 11,
     ["no forward event at 'decoder.blocks.0.self_atn.mask'",
      "did you mean 'decoder.blocks.0.self_attn.mask'"]),
    ('query = 2', 'query = 2\nhead = 5', 14, ["head = 5 is out of range", "1 to 4"]),
    ('query = 2', 'query = 9', 13, ["query = 9 is out of range", "from 1 to 6"]),
    ('answer = "hidden_keys"\ntolerance = 0', 'tolerance = 0', 15, ["has no answer function",
                                                                   "hidden_keys"]),
    ('tolerance = 0\n', '', 15, ["gives a number but", "add tolerance"]),
    ('view = "attention"', 'view = "attention"\ncolour = "red"', 13, ["unknown key 'colour'"]),
    ('view = "attention"', 'veiw = "attention"', 12, ["unknown key 'veiw'", "did you mean 'view'"]),
    ('query = 2', 'query = "two"', 13, ["query = 'two' in step 1 is not a whole number"]),
    ('query = 2', 'query = 0', 13, ["out of range (people count from 1)"]),
    ('answer = "top_key"', 'answer = "top_kee"', 27, ["unknown answer function 'top_kee'",
                                                      "did you mean 'top_key'"]),
    ('choices = "keys"', 'choices = ["9", "8"]', 28, ["computed answer", "not among the choices"]),
    ('scenario = "reverse"', 'scenario = "reverze"', 3, ["no scenario named 'reverze'"]),
    ('input = ["31415", "27"]', 'input = ["31415", "2x"]', 4, ["input"]),
    ('item = 2', 'item = 3', 23, ["item = 3 is out of range", "1 to 2"]),
    ('title = "Masks"', 'title = "Masks', 2, ["not valid TOML"]),
    ('choices = "keys"\n', 'choices = "keys"\n[[stepz]]\ntext = "x"\n', 29,
     ["unknown table or key 'stepz'", "did you mean 'step'"]),
    ('view = "attention"', 'view = "attention"\nbreaks = ["no_masks"]', 13,
     ["names no switch 'no_masks'"]),
])
def test_each_mistake_is_one_problem_with_its_line_and_fix(tmp_path, worlds, old, new, line, words):
    assert old in GOOD
    found = problems_of(tmp_path, GOOD.replace(old, new, 1), worlds)
    assert len(found) == 1, found
    assert found[0][0] == line, found
    for word in words:
        assert word in found[0][1], found


def test_an_inherited_bad_value_is_reported_once_at_the_line_that_set_it(tmp_path, worlds):
    found = problems_of(tmp_path, GOOD.replace('input = ["31415", "27"]', 'example = 99'), worlds)
    assert [line for line, _ in found] == [4]
    assert "example 99 does not exist" in found[0][1]


def test_several_mistakes_are_all_reported_in_line_order(tmp_path, worlds):
    text = GOOD.replace('view = "attention"', 'viwe = "attention"').replace(
        'choices = "keys"', 'tolerance = 0.1')
    with pytest.raises(LessonError) as error:
        walk_lesson(read_lesson(write(tmp_path, text)), worlds)
    lines = [p.line for p in error.value.problems]
    assert lines == sorted(lines) and len(lines) == 2
    assert str(error.value).splitlines()[0].startswith(f"{tmp_path / 'lesson.toml'}:12: ")


def test_a_file_that_is_not_text_or_not_there(tmp_path, worlds):
    path = tmp_path / "binary.toml"
    path.write_bytes(b'[lesson]\ntitle = "x"\n\xff\xfe\n')
    assert [(p.line, "UTF-8" in p.message) for p in check_file(path, worlds)] == [(3, True)]
    missing = check_file(tmp_path / "nope.toml", worlds)
    assert len(missing) == 1 and missing[0].line == 1 and "cannot read" in missing[0].message
