"""Shared helpers for the TUI tests: a headless 80x24 app, and the screen as plain text.

Snapshots are plain text files under tests/tui/snapshots/ (what a user would read on the
screen, one file per screen and mode). They are compared exactly; to accept a change after
looking at the diff, run with TUI_TFS_UPDATE_SNAPSHOTS=1.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console

SNAPSHOTS = Path(__file__).parent / "snapshots"
SIZE = (80, 24)


def screen_text(app) -> str:
    """The app's current screen as plain text, one line per terminal row."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False,
                      safe_box=False)
    console.print(app.screen._compositor.render_update(full=True))
    lines = console.export_text(styles=False).splitlines()
    return "\n".join(line.rstrip() for line in lines[:height]) + "\n"


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("TUI_TFS_UPDATE_SNAPSHOTS") or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not os.environ.get("TUI_TFS_UPDATE_SNAPSHOTS"):
            pytest.fail(f"snapshot {path.name} did not exist and was written: check it, "
                        f"then run again")
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"screen differs from {path} (TUI_TFS_UPDATE_SNAPSHOTS=1 to accept)"


@pytest.fixture
def make_app():
    """A factory for the app on a scenario, in colour or not, Unicode or ASCII."""
    from tui_tfs.app import TfsApp

    def make(scenario: str | None = "reverse", ascii: bool = False, color: bool = True, path=None):
        return TfsApp(scenario, path, ascii=ascii, color=color)

    return make


def drive(app, *steps, size=SIZE):
    """Run `app` headless at `size`; each step is a key string (pressed, then idle) or an
    async callable taking the pilot. Returns the app after it closed."""
    import asyncio

    async def main():
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            for step in steps:
                if isinstance(step, str):
                    await pilot.press(step)
                    await pilot.pause()
                else:
                    await step(pilot)
    asyncio.run(main())
    return app


def forward_number(trace, path: str) -> int:
    """The number the status line gives the forward event at `path` (counted from 1): taken
    from the trace, so a newly recorded op moves it without breaking a test."""
    return next(e.index for e in trace.events if e.phase == "forward" and e.path == path) + 1


def opening_trace(source: str = "reverse"):
    """The trace the app shows first on `source` (the same seed and example as the app), for
    tests that read the app's screen from another process (tmux)."""
    from tui_tfs.session import Session

    return Session.open(source).trace


def snapshotted_every(controller, every: int):
    """`controller` keeping a snapshot every `every` steps (the app's default budget), its first
    at the step it stands at: short runs get several snapshots, and so several probe frames."""
    from engine.training.snapshots import Snapshots
    from tui_tfs.training import SNAPSHOT_BUDGET

    controller.snapshots = Snapshots(every, SNAPSHOT_BUDGET)
    controller.snapshots.take(controller.trainer)
    return controller
