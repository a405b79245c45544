"""`explore --record` writes each key with its time; `--replay` plays the keys back at their
times (divided by --speed) and stops at the user's first key; a bad file is one message with
its line."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tui_tfs.keys_app import KeysApp
from tui_tfs.keys_file import KeyPress, KeysFileError, KeysWriter, read_keys

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["n", "n", "i", "question_mark", "escape", "o", "a"]


def drive(app, *keys: str, wait: float = 0.0):
    """Run `app` headless at 80x23, press `keys`, wait; returns the explorer's cursor state."""
    state = {}

    async def main():
        async with app.run_test(size=(80, 23)) as pilot:
            await pilot.pause(0.3)
            for key in keys:
                await pilot.press(key)
                await pilot.pause()
            for _ in range(int(wait / 0.05)):
                await pilot.pause(0.05)
                if not app.replaying:
                    break
            await pilot.pause(0.2)
            screen = app.screen
            state["index"] = screen.session.cursor.index
            state["view"] = screen.view_name
            state["replayed"] = app.replayed
    asyncio.run(main())
    return state


def test_a_recording_replays_to_the_same_place(tmp_path):
    path = tmp_path / "demo.keys"
    recorded = drive(KeysApp("reverse", None, False, record=KeysWriter(path)), *KEYS)
    presses = read_keys(path)
    assert [p.key for p in presses] == KEYS
    assert presses[3].char == "?" and presses[4].char in (None, "\x1b")
    assert all(a.t <= b.t for a, b in zip(presses, presses[1:]))
    assert recorded["index"] > 0 and recorded["view"] == "attention"
    replayed = drive(KeysApp("reverse", None, False, replay=presses, speed=50), wait=20)
    assert replayed["replayed"] == len(KEYS)
    assert (replayed["index"], replayed["view"]) == (recorded["index"], recorded["view"])


def test_any_key_stops_the_replay_and_is_not_passed_on(tmp_path):
    slow = [KeyPress(0.1, "n", "n")] + [KeyPress(30.0 + i, "n", "n") for i in range(5)]
    state = {}

    async def main():
        app = KeysApp("reverse", None, False, replay=slow, speed=1)
        async with app.run_test(size=(80, 23)) as pilot:
            for _ in range(100):
                await pilot.pause(0.05)
                if app.replayed == 1:
                    break
            await pilot.pause(0.2)
            at = app.screen.session.cursor.index
            await pilot.press("n")  # the user takes over: this key stops the replay only
            await pilot.pause(0.2)
            state.update(at=at, after=app.screen.session.cursor.index, replaying=app.replaying,
                         replayed=app.replayed)
            await pilot.press("n")  # from now on keys work as usual
            await pilot.pause(0.2)
            state["then"] = app.screen.session.cursor.index
    asyncio.run(main())
    assert state["replayed"] == 1 and not state["replaying"]
    assert state["after"] == state["at"] == 1
    assert state["then"] == 2


@pytest.mark.parametrize("text, line, words", [
    ("", 1, "not a tui-tfs keystroke file"),
    ('{"tui-tfs-keys": 1}\n{"t": 1, "key": "n", "char": "n"}\nnot json\n', 3, "not a JSON object"),
    ('{"tui-tfs-keys": 1}\n{"t": -1, "key": "n", "char": "n"}\n', 2, "expected"),
    ('{"tui-tfs-keys": 1}\n{"t": 2, "key": "n", "char": "n"}\n{"t": 1, "key": "n", "char": null}\n',
     3, "keys must be in time order"),
    ('{"tui-tfs-keys": 1}\n{"t": 1, "key": "", "char": "n"}\n', 2, "expected"),
])
def test_a_bad_keys_file_is_one_message_with_its_line(tmp_path, text, line, words):
    path = tmp_path / "bad.keys"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KeysFileError) as error:
        read_keys(path)
    assert str(error.value).startswith(f"{path}:{line}: ") and words in str(error.value)


def test_the_command_refuses_a_bad_replay_file_before_the_screen(tmp_path):
    (tmp_path / "bad.keys").write_text("hello\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "tui_tfs.cli", "explore", "reverse",
                             "--replay", "bad.keys"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    header = json.dumps({"tui-tfs-keys": 1})
    assert result.stderr.strip() == (f"tui-tfs explore: bad.keys:1: not a tui-tfs keystroke "
                                     f"file (its first line must be {header}); "
                                     f"record one with tui-tfs explore --record")
    bad_speed = subprocess.run([sys.executable, "-m", "tui_tfs.cli", "explore", "--speed", "0"],
                               env=env, capture_output=True, text=True, timeout=120)
    assert bad_speed.returncode == 2 and "must be from 0.1 to 100" in bad_speed.stderr
