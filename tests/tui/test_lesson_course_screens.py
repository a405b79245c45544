"""Every built-in lesson walked on the lesson screen at 80x23: each step's text and question
read whole without scrolling, in Unicode and in ASCII, and `g` opens the explorer at exactly
the event the lesson checker resolved for the step (each distinct place once: an explorer
screen costs about two seconds on a busy machine). Then the lesson is walked back in the
explorer's lesson pane (`w` flips to it, `p` turns back a step): each step reads there too, and
the views follow to each step's place."""
from __future__ import annotations

import asyncio
import re

import pytest

from conftest import screen_text
from scenarios.lessons import Worlds, builtin_lessons
from tui_tfs.lessons import LessonRun, Progress
from tui_tfs.lessons_screen import LessonApp, LessonScreen
from tui_tfs.screens.explorer import ExplorerScreen
from tui_tfs.screens.lesson_explorer import LessonExplorerScreen

COURSE = builtin_lessons()


@pytest.fixture(scope="module")
def worlds():
    return Worlds()


def words(text: str) -> str:
    """Screen or Markdown text as bare words: borders, marks and line breaks gone."""
    text = re.sub(r"[`*_]", "", text)
    return " ".join(re.sub(r"[│|╭╮╰╯─+]", " ", text).split())


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("ascii", [False, True], ids=["unicode", "ascii"])
@pytest.mark.parametrize("name", [n for n, _ in COURSE])
def test_every_step_reads_at_80x23_and_goes_to_its_place(tmp_path, worlds, name, ascii):
    run = LessonRun.open(name, worlds, Progress(tmp_path / "p.json"), ascii=ascii, check=False)
    app = LessonApp(run, ascii=ascii, color=False)
    problems = []
    last = {}  # the place `g` went to last

    async def main():
        async with app.run_test(size=(80, 23)) as pilot:
            for index in range(run.count):
                for _ in range(2400):  # a step that trains in place takes seconds
                    await pilot.pause(0.05)
                    screen = app.screen
                    if isinstance(screen, LessonScreen) and index in screen.ready:
                        break
                await pilot.pause(0.1)
                text = screen_text(app)
                step = run.step
                seen = words(text)
                if ascii and any(ord(c) > 127 for c in text):
                    problems.append((index + 1, "not ASCII"))
                for part in [step.text.split("\n\n")[0], step.question and step.question.ask]:
                    if part and words(part)[:60] not in seen:
                        problems.append((index + 1, f"not on screen: {words(part)[:60]!r}"))
                place = (run.shown().key, run.shown().event.index, run.shown().view)
                if not ascii and place != last.get("place"):  # each distinct place once
                    last["place"] = place
                    await pilot.press("g")
                    await pilot.pause()
                    explorer = app.screen
                    if not isinstance(explorer, ExplorerScreen) or (
                            explorer.session.event.path != run.shown().event.path):
                        problems.append((index + 1, "g did not reach the step's event"))
                    for _ in range(3):  # Esc closes the overview first, then the explorer
                        await pilot.press("escape")
                        await pilot.pause()
                        if isinstance(app.screen, LessonScreen):
                            break
                if index < run.count - 1:
                    await pilot.press("n")
            await pilot.pause(0.1)
            await pilot.press("g")  # the last step's place, the views first ...
            for _ in range(200):  # building the step's session takes a moment on a busy box
                await pilot.pause(0.05)
                if isinstance(app.screen, LessonExplorerScreen):
                    break
            await pilot.pause(0.1)
            await pilot.press("w")  # ... then the lesson pane in their place
            for index in reversed(range(run.count)):
                await pilot.pause(0.1)
                read_in_pane(index, screen_text(app), app.screen)
                if index:
                    await pilot.press("p")

    def read_in_pane(index, text, explorer):
        step, seen = run.lesson.steps[index], words(text)
        if not isinstance(explorer, LessonExplorerScreen) or run.index != index:
            problems.append((index + 1, "not in the lesson pane"))
            return
        if ascii and any(ord(c) > 127 for c in text):
            problems.append((index + 1, "pane: not ASCII"))
        for part in [step.text.split("\n\n")[0], step.question and step.question.ask]:
            if part and words(part)[:60] not in seen:
                problems.append((index + 1, f"pane: not on screen: {words(part)[:60]!r}"))
        if explorer.session.event.path != run.shown(index).event.path:
            problems.append((index + 1, "the views did not follow to the step's event"))
    asyncio.run(main())
    assert problems == []
