"""A lesson run without the screen: a step's place becomes an explorer session standing on the
same event and view, answers are judged against the computed ones, and progress resumes."""
from __future__ import annotations

import numpy as np
import pytest

from scenarios.lessons import Worlds
from tui_tfs.lessons import LessonNotFound, LessonRun, Progress, data_dir


DIGITS = """\
[lesson]
title = "Digits"
scenario = "reverse"
input = "31415"

[[step]]
text = "Keys are digits."
op = "softmax"

[step.question]
ask = "Which digit does row 1 look at most?"
answer = "top_key"
choices = "keys"
"""


@pytest.fixture(scope="module")
def worlds():
    return Worlds()


@pytest.fixture
def progress(tmp_path):
    return Progress(tmp_path / "lessons.json")


def test_a_steps_place_becomes_a_session_at_that_event_and_view(worlds, progress):
    run = LessonRun.open("masks", worlds, progress)
    assert run.index == 0 and not run.resumed
    run.go(2)  # step 3: the decoder's look-ahead mask, query row 2
    shown = run.shown()
    session = run.session()
    assert session.event.path == "decoder.blocks.0.self_attn.mask" == shown.event.path
    assert session.shown_view == "attention"
    assert (session.view.query, session.view.head, session.view.stage) == (1, 0, "masked")
    amap = session.attention_map()
    assert amap.path == "decoder.blocks.0.self_attn"
    np.testing.assert_array_equal(amap.values, shown.trace.attention(
        "decoder.blocks.0.self_attn", 0, 0, "masked").values)
    # the question is about the row the session shows
    value, choices = run.expected()
    assert choices is None and value == float((~amap.keep[session.view.query]).sum())


def test_answers_are_judged_against_the_computed_answer(worlds, progress):
    run = LessonRun.open("masks", worlds, progress)
    run.go(2)
    value, _ = run.expected()
    right = run.answer(str(int(value)))
    assert right.right and right.feedback == run.step.question.right
    wrong = run.answer(str(int(value) + 1))
    assert not wrong.right and wrong.feedback == run.step.question.wrong
    assert wrong.answer == f"{value:.4g}"
    assert not run.answer("four").right


def test_a_choice_is_answered_by_label_or_number(worlds, progress):
    run = LessonRun.open("training", worlds, progress)  # step 3: yes/no, untrained
    run.go(2)
    value, choices = run.expected()
    assert choices == ["yes", "no"] and value == "no"  # an untrained model cannot reverse
    assert run.answer("no").right and run.answer("2").right
    assert not run.answer("yes").right and not run.answer("1").right


def test_a_label_that_reads_as_a_number_is_the_label(worlds, progress, tmp_path):
    path = tmp_path / "digits.toml"
    path.write_text(DIGITS, encoding="utf-8")
    run = LessonRun.open(str(path), worlds, progress)
    value, choices = run.expected()
    assert choices == ["3", "1", "4", "5"]
    assert run.answer(value).right
    wrong = next(c for c in choices if c != value)
    assert not run.answer(wrong).right
    # the student typed a digit: it is that digit, not the choice of that number
    assert run.answer(str(choices.index(value) + 1)).right == (
        choices[choices.index(value)] == str(choices.index(value) + 1))


def test_the_session_trains_a_copy_not_the_lessons_model(worlds, progress):
    run = LessonRun.open("masks", worlds, progress)
    session = run.session()
    before = run.shown().model.state_dict()
    for param in session.model.params():
        param.data += 1.0
    after = run.shown().model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_progress_resumes_at_the_step_left_and_survives_a_damaged_file(worlds, tmp_path):
    progress = Progress(tmp_path / "data" / "lessons.json")
    run = LessonRun.open("masks", worlds, progress, check=False)
    assert run.next() and run.next() and run.index == 2
    again = LessonRun.open("masks", worlds, Progress(progress.path), check=False)
    assert again.index == 2 and again.resumed
    assert not again.go(99) and again.index == 2
    progress.path.write_text("{not json", encoding="utf-8")
    fresh = LessonRun.open("masks", worlds, Progress(progress.path), check=False)
    assert fresh.index == 0
    fresh.next()
    assert Progress(progress.path).step_of("masks") == 2


def test_unknown_lessons_and_the_data_directory(tmp_path):
    with pytest.raises(LessonNotFound, match="tui-tfs lesson lists"):
        LessonRun.open("no-such-lesson")
    assert data_dir({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "tui-tfs"
    assert data_dir({"HOME": "/nowhere"}).name == "tui-tfs"


def test_the_views_a_lesson_may_name_are_the_explorers():
    """scenarios cannot import the UI, so the lesson format keeps its own list of views: the
    same as the explorer's, or a lesson could name a view the explorer does not have."""
    from scenarios.lessons.keys import VIEWS
    from tui_tfs.explorer_state import VIEWS as EXPLORER_VIEWS

    assert tuple(VIEWS) == tuple(EXPLORER_VIEWS)
