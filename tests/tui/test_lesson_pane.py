"""The lesson pane in the explorer: beside the views on a wide terminal, flipped with the views
by `w` at 80x23 and 80x24 (Unicode and ASCII), its n/p turning steps with the explorer
following to each step's place, `R` (or g in the pane) taking the student back to the step's
place after wandering off, an answer judged in the pane, and Esc back to the lesson screen at
the step reached."""
from __future__ import annotations

import pytest

from conftest import screen_text
from test_lesson_screen import lesson_app, play
from tui_tfs.lesson_pane import LessonPane
from tui_tfs.lessons_screen import LessonScreen
from tui_tfs.screens.lesson_explorer import LessonExplorerScreen


def place_of(app) -> tuple:
    """(event path, head, stage, query, view) the explorer shows, 0-based as the session."""
    screen = app.screen
    s = screen.session
    return s.event.path, s.view.head, s.view.stage, s.view.query, screen.state.shown


def step_place(app) -> tuple:
    shown = app.lesson_run.shown()
    return shown.event.path, shown.head, shown.stage, shown.query, shown.view


@pytest.mark.parametrize("size", [(80, 23), (80, 24)])
@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
def test_w_flips_between_the_views_and_the_lesson_pane(tmp_path, size, ascii):
    app = lesson_app(tmp_path, ascii=ascii)
    seen = {}

    def look(name):
        async def take(app, pilot):
            await pilot.pause(0.2)
            seen["explorer"] = isinstance(app.screen, LessonExplorerScreen)
            seen[name] = (screen_text(app), app.screen.query_one(LessonPane).display,
                          app.focused is not None and app.screen.query_one(LessonPane)
                          in app.focused.ancestors_with_self)
        return take

    play(app, "g", look("views"), "w", look("pane"), "w", look("back"), size=size)
    views, pane, back = seen["views"], seen["pane"], seen["back"]
    step = app.lesson_run.step
    assert seen["explorer"]
    # views first (the student came to look), with the flip key in the footer
    assert not views[1] and "attention map" in views[0] and "w Lesson" in views[0]
    assert step.question.ask not in views[0]
    # the pane alone, focused, with the whole step: title, text, question
    text = pane[0]
    assert pane[1] and pane[2]
    assert "step 1/4 - Two inputs, one batch" in text
    assert "A batch holds several inputs at once" in text
    assert "Question: How many keys does the mask hide from query row 1 of item 2?" in text
    assert "attention map" not in text and "reverse" not in text.splitlines()[0]
    assert "n Next" in text and "g Go there" in text and "w Lesson" in text
    assert len(text.splitlines()) <= size[1]
    assert back[0] == views[0] and not back[1]
    if ascii:
        assert all(ord(c) < 128 for c in views[0] + pane[0])


def test_the_pane_stands_beside_the_views_on_a_wide_terminal(tmp_path):
    app = lesson_app(tmp_path)
    seen = {}

    async def look(app, pilot):
        await pilot.pause(0.2)
        seen.setdefault("screens", []).append(screen_text(app))

    play(app, "g", look, "w", look, size=(130, 30))
    both, hidden = seen["screens"]
    assert "attention map" in both and "Question: How many keys does the mask" in both
    assert "reverse" in both  # the layer tree too
    assert "attention map" in hidden and "Question:" not in hidden


def test_n_and_p_in_the_pane_turn_steps_and_the_views_follow(tmp_path):
    app = lesson_app(tmp_path)
    places, seen_screens = [], []

    async def look(app, pilot):
        await pilot.pause(0.3)
        explorer = isinstance(app.screen, LessonExplorerScreen)
        places.append((app.lesson_run.index, place_of(app) if explorer else None,
                       step_place(app), screen_text(app)))
        seen_screens.append(type(app.screen))

    play(app, "g", "w", look, "n", look, "n", look, "p", look, "greater_than_sign", look,
         "escape", look)
    (i0, p0, s0, _), (i1, p1, s1, t1), (i2, p2, s2, _), (i3, p3, s3, _), (i4, p4, s4, _), \
        (i5, _, _, lesson) = places
    assert [i0, i1, i2, i3, i4] == [0, 1, 2, 1, 2]
    for shown, wanted in ((p0, s0), (p1, s1), (p2, s2), (p3, s3), (p4, s4)):
        assert shown == wanted
    assert p2[0] != p0[0]  # the look-ahead step is in the decoder, the first in the encoder
    assert "step 2/4 - The same row after the softmax" in t1
    # Esc: the lesson screen, at the step the pane got to
    assert i5 == 2 and "step 3/4" in lesson.splitlines()[0]
    assert seen_screens[-1] is LessonScreen


@pytest.mark.parametrize("key", ["R", "pane g"])
def test_back_to_the_steps_place_after_wandering_off(tmp_path, key):
    app = lesson_app(tmp_path)
    seen = {}

    async def wandered(app, pilot):
        await pilot.pause(0.2)
        seen["wandered"] = place_of(app)
        seen["step"] = step_place(app)
        seen["session"] = app.screen.session

    async def back(app, pilot):
        await pilot.pause(0.3)
        seen["back"] = place_of(app)
        seen["index"] = app.lesson_run.index

    keys = ["R"] if key == "R" else ["w", "g"]
    play(app, "n", "g", "h", "s", "n", "n", "j", "A", wandered, *keys, back)
    assert seen["wandered"] != seen["step"]
    assert seen["wandered"][4] == "overview"
    assert seen["back"] == seen["step"] and seen["index"] == 1
    assert seen["session"].trace is None  # the left session gave its trace back


def test_an_answer_is_judged_in_the_pane(tmp_path):
    app = lesson_app(tmp_path)
    seen = {}

    async def look(app, pilot):
        await pilot.pause(0.2)
        seen.setdefault("screens", []).append(screen_text(app))
        seen.setdefault("types", []).append(type(app.screen))

    play(app, "g", "w", "a", look, "escape", look, "a", "3", "enter", look, "escape", look)
    asking, still, judged, left = seen["screens"]
    step = app.lesson_run.step
    assert "your answer, then Enter" in asking
    assert "✓ " + step.question.right[:40] in judged
    # Esc while typing closes the box; with no answer being typed it leaves the explorer
    assert "your answer, then Enter" not in still and "Question:" in still
    assert seen["types"][:3] == [LessonExplorerScreen] * 3
    assert seen["types"][3] is LessonScreen and "step 1/4" in left.splitlines()[0]


def test_help_in_the_lessons_explorer_lists_the_lesson_keys(tmp_path):
    app = lesson_app(tmp_path)
    seen = {}

    async def helped(app, pilot):
        await pilot.pause(0.2)
        seen["help"] = screen_text(app)

    play(app, "g", "question_mark", helped, size=(80, 40))
    text = " ".join(seen["help"].split())
    assert "Lesson pane <-> views" in text and "Back to the lesson step's place" in text


def test_while_the_logit_lens_is_shown_angle_brackets_page_it_not_the_lesson(tmp_path):
    """next-word (tiny-lm): W shows the lens, > and < page its positions and the lesson stays
    at its step; back on another view > turns the step again."""
    app = lesson_app(tmp_path, name="next-word")
    seen = []

    async def look(app, pilot):
        await pilot.pause(0.3)
        screen = app.screen
        seen.append((app.lesson_run.index, screen.state.shown, screen.state.view.lens_start))

    play(app, "g", "W", look, "greater_than_sign", look, "less_than_sign", look,
         "a", "greater_than_sign", look)
    (i0, v0, s0), (i1, v1, s1), (i2, v2, s2), (i3, v3, _) = seen
    assert (i0, v0, s0) == (0, "lens", 0)
    assert (i1, v1) == (0, "lens") and s1 > 0  # the next page of positions
    assert (i2, v2, s2) == (0, "lens", 0)
    assert i3 == 1 and v3 != "lens"  # attention shown: > turned the lesson's step
