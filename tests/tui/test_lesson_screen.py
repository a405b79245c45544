"""The lesson screen: a step's text and question at 80x23 and 80x24 in Unicode and ASCII, an
answer judged, `g` opening the explorer at the step's place and Esc coming back, and the real
command in tmux."""
from __future__ import annotations

import asyncio
import shlex
import shutil
import sys

import pytest

from conftest import screen_text
from tui_tfs.lessons import LessonRun, Progress
from tui_tfs.lessons_screen import LessonApp, LessonScreen
from tui_tfs.screens.explorer import ExplorerScreen

SIZES = [(80, 23), (80, 24)]


def lesson_app(tmp_path, name: str = "masks", ascii: bool = False) -> LessonApp:
    run = LessonRun.open(name, progress=Progress(tmp_path / "lessons.json"), ascii=ascii,
                         check=False)
    return LessonApp(run, ascii=ascii, color=False)


async def until_ready(app, pilot) -> None:
    for _ in range(200):
        await pilot.pause(0.05)
        screen = app.screen
        if isinstance(screen, LessonScreen) and screen.lesson_run.index in screen.ready:
            await pilot.pause()
            return
    raise AssertionError("the step was never prepared")


def play(app, *steps, size=(80, 23)):
    async def main():
        async with app.run_test(size=size) as pilot:
            await until_ready(app, pilot)
            for step in steps:
                if isinstance(step, str):
                    await pilot.press(step)
                    await pilot.pause()
                else:
                    await step(app, pilot)
    asyncio.run(main())


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("ascii", [False, True])
def test_a_step_reads_whole_and_an_answer_is_judged(tmp_path, size, ascii):
    app = lesson_app(tmp_path, ascii=ascii)
    screens = []

    async def look(app, pilot):
        screens.append(screen_text(app))

    play(app, look, "a", "3", "enter", look, "a", "9", "enter", look, size=size)
    first, right, wrong = screens
    step = app.lesson_run.step
    assert "Padding and look-ahead masks: step 1/4 - Two inputs, one batch" in first
    assert "A batch holds several inputs at once" in first
    assert "Question: How many keys does the mask hide from query row 1 of item 2?" in first
    assert "g Go there" in first and "a Answer" in first
    assert step.question.right in right and ("[right]" if ascii else "✓") in right
    assert step.question.wrong in wrong and ("[not yet]" if ascii else "✗") in wrong
    if ascii:
        assert all(ord(c) < 128 for c in first + right + wrong)


def test_go_there_opens_the_explorer_at_the_place_and_esc_comes_back(tmp_path):
    seen = {}

    async def in_explorer(app, pilot):
        await pilot.pause(0.3)
        screen = app.screen
        seen["screen"] = type(screen)
        seen["event"] = screen.session.event.path
        seen["view"] = screen.session.view
        seen["text"] = screen_text(app)

    async def back(app, pilot):
        seen["after"] = type(app.screen)
        seen["title"] = screen_text(app).splitlines()[0]

    async def helped(app, pilot):
        seen["help"] = screen_text(app)

    play(lesson_app(tmp_path), "question_mark", helped, "escape", "n", "n", "g", in_explorer,
         "escape", back, "n", back)
    assert "Open the explorer at this step's place" in seen["help"]
    assert issubclass(seen["screen"], ExplorerScreen)  # with the lesson pane beside the views
    assert seen["event"] == "decoder.blocks.0.self_attn.mask"
    assert (seen["view"].query, seen["view"].stage) == (1, "masked")
    assert "attention map" in seen["text"] and "[masked]" in seen["text"]
    assert seen["after"] is LessonScreen
    assert "step 4/4 - The last row sees everything" in seen["title"]


def test_a_student_resumes_where_they_left(tmp_path):
    play(lesson_app(tmp_path), "n", "n")
    again = lesson_app(tmp_path)
    titles = []

    async def look(app, pilot):
        titles.append(screen_text(app).splitlines()[0])

    play(again, look)
    assert again.lesson_run.resumed and "step 3/4" in titles[0]


@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_real_command_runs_a_lesson_in_tmux_at_80x23(tmp_path):
    from test_tmux import ROOT, Tmux

    tmux = Tmux()
    installed = shutil.which("tui-tfs")  # the console script (it honours PYTHONPATH)
    program = (shlex.quote(installed) if installed else
               f"{shlex.quote(sys.executable)} -m tui_tfs.cli")
    # the pause lets the status line go before the app measures the terminal; LINES and
    # COLUMNS (left by the terminal the tests run in) would override the pane's size
    command = (f"sleep 1; unset LINES COLUMNS; cd {shlex.quote(str(ROOT))} && "
               f"export LANG=C.UTF-8 TERM=xterm-256color "
               f"PYTHONPATH={shlex.quote(str(ROOT))} XDG_DATA_HOME={shlex.quote(str(tmp_path))} "
               f"&& {program} lesson masks")
    try:  # as Tmux.start, but 80x23: a student's 80x24 terminal inside tmux
        tmux.run("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "80", "-y", "23",
                 f"sh -c {shlex.quote(command + '; echo app-exit-status $?; sleep 60')}")
        tmux.run("set-option", "-g", "status", "off")
        screen = tmux.wait_for("a: answer")
        assert "step 1/4 - Two inputs, one batch" in screen and len(screen.splitlines()) <= 23
        assert "g Go there" in screen
        tmux.keys("a")
        tmux.wait_for("your answer, then Enter")  # the box has the focus: type into it
        tmux.keys("-l", "3")
        tmux.keys("Enter")
        tmux.wait_for("one for each <pad>")
        tmux.keys("n")
        tmux.wait_for("step 2/4")
        tmux.keys("g")
        tmux.wait_for("attention map")
        tmux.wait_for("w Lesson")  # the flip key in the footer
        tmux.keys("w")  # the lesson pane in the views' place
        screen = tmux.wait_for("The same row after the softmax")
        assert "attention map" not in screen and len(screen.splitlines()) <= 23
        tmux.keys("n")  # the pane turns the step; the views follow
        tmux.wait_for("step 3/4 - The look-ahead mask")
        tmux.keys("w")
        screen = tmux.wait_for("attention map")
        assert "decoder.blocks.0.self_attn" in screen
        tmux.keys("Escape")
        tmux.wait_for("a: answer")
        tmux.keys("q")
        tmux.wait_for("app-exit-status 0")
        saved = (tmp_path / "tui-tfs" / "lessons.json").read_text(encoding="utf-8")
        assert '"masks": 3' in saved  # the step the student was at
    finally:
        tmux.close()


@pytest.mark.timeout(120)
def test_a_step_that_trains_shows_its_progress_and_quitting_stops_the_training(tmp_path):
    """Lesson 1 trains reverse to step 300 in place: the text and the progress are on screen
    while it trains, and quitting mid-way stops the thread (it checks is_cancelled each step)."""
    app = lesson_app(tmp_path, "attention")
    seen = {}

    async def main():
        async with app.run_test(size=(80, 23)) as pilot:
            for _ in range(400):
                await pilot.pause(0.05)
                text = screen_text(app)
                if "training this step's model: step" in text:
                    seen["text"] = text
                    break
            await pilot.press("q")
    asyncio.run(main())
    assert "This model has been trained for 300 steps" in seen["text"]
    assert len(app.lesson_run.worlds) == 0  # the training stopped before its model was built
