"""Class mode: its settings from the config file and the flags, bad files as one message with
the line, the training thread at a lowered priority (read back from /proc), the session's
scheduling group lowered while training, and the memory limit's message (Pilot, 80x24)."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import screen_text

from tui_tfs.app import TfsApp
from tui_tfs.arguments import build_parser
from tui_tfs.class_mode import (ClassSettings, ConfigError, load_settings, read_config,
                                settings_from_args)
from tui_tfs.fair_share import memory_reason, resident_bytes, thread_nice
from tui_tfs.training import PAUSED, READY, RUNNING, TrainingController

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]
LINUX = pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice and /proc are Linux's")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- settings ---------------------------------------------------------------------------------------
def test_settings_come_from_the_users_config_file(tmp_path):
    config = write(tmp_path / "home" / "tui-tfs" / "config.toml",
                   "[class]\nenabled = true\ntraining_nice = 15\nmemory_limit_mb = 700\n")
    settings = load_settings(env={"XDG_CONFIG_HOME": str(tmp_path / "home"),
                                  "XDG_CONFIG_DIRS": str(tmp_path / "none")})
    assert (settings.enabled, settings.training_nice, settings.memory_limit_mb) == (True, 15, 700)
    assert settings.source == config and str(config) in settings.where_to_change


def test_a_machine_wide_file_is_read_when_the_user_has_none(tmp_path):
    write(tmp_path / "etc" / "tui-tfs" / "config.toml", "[class]\nenabled = true\n")
    settings = load_settings(env={"XDG_CONFIG_HOME": str(tmp_path / "home"),
                                  "XDG_CONFIG_DIRS": f"{tmp_path / 'x'}:{tmp_path / 'etc'}"})
    assert settings.enabled and settings.training_nice == 10 and settings.memory_limit_mb == 600


def test_without_a_file_class_mode_is_off_and_the_flag_turns_it_on(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path)}
    assert not load_settings(env=env).enabled
    assert load_settings(class_flag=True, env=env).enabled


def test_the_flags_reach_the_settings(tmp_path, monkeypatch):
    config = write(tmp_path / "class.toml", "[class]\ntraining_nice = 12\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nothing"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "nothing"))
    monkeypatch.delenv("TUI_TFS_CONFIG", raising=False)
    parser = build_parser()
    for argv in (["--class", "--config", str(config), "explore", "reverse"],
                 ["explore", "--class", "--config", str(config), "reverse"],
                 ["--config", str(config), "lesson", "--class", "01"]):
        settings = settings_from_args(parser.parse_args(argv))
        assert settings.enabled and settings.training_nice == 12 and settings.source == config
    settings = settings_from_args(parser.parse_args(["--config", str(config), "explore"]))
    assert not settings.enabled and settings.training_nice == 12  # the file alone: not on
    monkeypatch.setenv("TUI_TFS_CONFIG", str(config))
    assert settings_from_args(parser.parse_args(["--class"])).training_nice == 12


@pytest.mark.parametrize("text, expected", [
    ("[class]\nenabled = true\ntraining_nice = 30\n", "line 3: class.training_nice must be"),
    ("[class]\n\nmemory_limit_mb = -5\n", "line 3: class.memory_limit_mb must be"),
    ("[class]\nenabled = 1\n", "line 2: class.enabled must be true or false"),
    ("[class]\ntraining_nice = true\n", "line 2: class.training_nice must be a whole number"),
    ("[class]\nmemory_limt_mb = 3\n", "line 2: unknown key 'memory_limt_mb'"),
    ("# settings\n[klass]\nenabled = true\n", "line 2: unknown table or key 'klass'"),
    ("[class]\nenabled = yes\n", "not valid TOML: Invalid value (at line 2"),
])
def test_a_bad_file_is_one_message_with_its_line(tmp_path, text, expected):
    path = write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError) as error:
        read_config(path)
    assert str(path) in str(error.value) and expected in str(error.value)


def test_the_command_says_what_is_wrong_in_one_line_without_a_traceback(tmp_path):
    path = write(tmp_path / "config.toml", "[class]\nenabled = true\ntraining_nice = 99\n")
    for argv, expected in (
            (["--config", str(path), "explore", "reverse"],
             "line 3: class.training_nice must be a whole number from 0"),
            (["--class", "--config", str(tmp_path / "missing.toml")],
             "missing.toml: no such file (named by --config)")):
        run = subprocess.run([sys.executable, "-m", "tui_tfs.cli", *argv], capture_output=True,
                             text=True, timeout=60, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert run.returncode == 2, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
        assert run.stderr.startswith("tui-tfs explore: ") and expected in run.stderr


# -- the app in class mode --------------------------------------------------------------------------
def class_app(**changes) -> TfsApp:
    """Class mode with no memory limit unless a test sets one: late in the suite the test
    process itself is past the default 600 MB (torch and transformers are loaded), and class
    mode would rightly refuse to train."""
    settings = dataclasses.replace(ClassSettings(enabled=True, lower_session_group=False,
                                                 memory_limit_mb=0), **changes)
    return TfsApp("reverse", None, ascii=False, class_settings=settings)


async def until(pilot, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await pilot.pause(0.05)


async def open_training(pilot, app) -> TrainingController:
    s = app.session
    s.training = TrainingController(s.scenario, s.model, eval_every=0)
    await pilot.press("ctrl+t")
    await pilot.pause()
    return s.training


def training_thread(before: frozenset[int] = frozenset()) -> threading.Thread | None:
    """The app's training thread, leaving out the threads in `before` (idents): an earlier
    test's training thread, told to stop, may still be finishing its step in this process."""
    return next((t for t in threading.enumerate()
                 if t.name == "tui-tfs training" and t.ident not in before), None)


@LINUX
@pytest.mark.parametrize("enabled", [True, False])
def test_the_training_thread_runs_at_the_lowered_priority(enabled):
    if os.nice(0) >= 13:  # a thread is never raised back: there is nothing to see
        pytest.skip("the tests run at nice 13 or more already")
    app = class_app(training_nice=13, enabled=enabled)
    seen = {}

    async def main():
        async with app.run_test(size=(80, 24)) as pilot:
            c = await open_training(pilot, app)
            before = frozenset(t.ident for t in threading.enumerate())
            await pilot.press("space")

            def settled() -> bool:
                """The thread has set its priority (class mode: it does so before its first
                step) or, without class mode, has taken a step. No more steps are waited for:
                a thread that yields to everything may wait long for them on a busy machine."""
                assert c.notice is None or "limit" not in c.notice, c.notice
                thread = training_thread(before)
                if thread is None:
                    return False
                return thread_nice(thread.native_id) == 13 if enabled else c.step >= 1

            await until(pilot, settled, 100)
            thread = training_thread(before)
            seen["training"] = thread_nice(thread.native_id)
            seen["getpriority"] = os.getpriority(os.PRIO_PROCESS, thread.native_id)
            seen["ui"] = thread_nice(threading.get_native_id())
            await pilot.press("space")  # pause; leaving the app tells the thread to stop

    asyncio.run(main())
    ui = seen["ui"]
    assert ui < 13  # the test runs at a normal priority
    expected = 13 if enabled else ui
    assert seen["training"] == seen["getpriority"] == expected


@LINUX
def test_the_session_group_is_lowered_while_training_and_put_back():
    """In a new session (its own scheduling group), as a terminal's program runs."""
    if Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() != "1":
        pytest.skip("the kernel does not group sessions (sched_autogroup_enabled is not 1)")
    code = """if True:
        from tui_tfs.class_mode import ClassSettings
        from tui_tfs.fair_share import SESSION_GROUP, TrainingPriority
        print(SESSION_GROUP.nice())
        with TrainingPriority(ClassSettings(enabled=True, training_nice=9)):
            print(SESSION_GROUP.nice(), SESSION_GROUP.why_not or "lowered")
        print(SESSION_GROUP.nice())
    """
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT, start_new_session=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:3] == ["0", "9 lowered", "0"], run.stdout


@LINUX
def test_training_refuses_to_start_past_the_memory_limit():
    app = class_app(memory_limit_mb=1)  # below any Python process's resident size
    seen = {}

    async def main():
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            c = await open_training(pilot, app)
            before = frozenset(t.ident for t in threading.enumerate())
            await pilot.press("space")
            await pilot.pause()
            seen["state"], seen["step"] = c.state, c.step
            seen["thread"] = training_thread(before)
            seen["notes"] = [str(n.message) for n in app._notifications]
            await pilot.pause(0.3)  # the notification drawn
            seen["screen"] = screen_text(app)

    asyncio.run(main())
    assert seen["state"] == READY and seen["step"] == 0 and seen["thread"] is None
    assert re.search(r"not started: \d+ MB in use, past the class limit of 1 MB", seen["screen"])
    assert "past the class limit of 1 MB" in seen["screen"]
    note = " ".join(seen["notes"])
    assert "past the class limit of 1 MB" in note and "raise memory_limit_mb under" in note
    assert "Nothing is lost" in note
    assert "[class]" in seen["screen"]  # drawn as written, not taken for markup


@LINUX
def test_training_pauses_when_the_memory_limit_is_reached_and_keeps_its_steps():
    app = class_app(memory_limit_mb=100_000)
    seen = {}

    async def main():
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            c = await open_training(pilot, app)
            await pilot.press("space")
            await until(pilot, lambda: c.step >= 3)
            # the class's limit drops below what the session uses now
            low = dataclasses.replace(app.class_settings, memory_limit_mb=1)
            c.guard = lambda: memory_reason(low)
            await until(pilot, lambda: c.state == PAUSED)
            await until(pilot, lambda: any("memory_limit_mb" in str(n.message)
                                           for n in app._notifications))
            seen["step"], seen["history"] = c.step, len(c.history)
            seen["notice"], seen["unsaved"] = c.notice, c.unsaved
            seen["screen"] = screen_text(app)

    asyncio.run(main())
    assert seen["step"] >= 3 and seen["history"] == seen["step"] and seen["unsaved"]
    assert re.fullmatch(rf"paused at step {seen['step']}: \d+ MB in use, past the class "
                        rf"limit of 1 MB", seen["notice"])
    assert seen["notice"] in seen["screen"]


@LINUX
def test_no_further_scenario_opens_past_the_memory_limit():
    app = class_app(memory_limit_mb=100_000)
    seen = {}

    async def main():
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await pilot.pause()
            first = app.session
            app.class_settings = dataclasses.replace(app.class_settings, memory_limit_mb=1)
            seen["opened"] = app.open_scenario("copy")
            await pilot.pause()
            seen["same"] = app.session is first and list(app.sessions) == [
                next(iter(app.sessions))]
            seen["notes"] = [str(n.message) for n in app._notifications]

    asyncio.run(main())
    assert seen["opened"] is False and seen["same"]
    assert any(n.startswith("copy not opened: ") and "past the class limit of 1 MB" in n
               for n in seen["notes"])


@LINUX
def test_past_the_memory_limit_the_training_screen_opens_no_explorer():
    """i (inspect), n (one traced step) and o (a snapshot) each build a traced session: past
    the limit each is refused with the notice, and the run is untouched."""
    app = class_app(memory_limit_mb=100_000)
    seen = {}

    async def main():
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            c = await open_training(pilot, app)
            await pilot.press("left")  # the first snapshot picked, for o
            app.class_settings = dataclasses.replace(app.class_settings, memory_limit_mb=1)
            for key in ("i", "n", "o"):
                await pilot.press(key)
                await pilot.pause()
            seen["screen"] = type(app.screen).__name__
            seen["step"] = c.step
            seen["notes"] = [str(n.message) for n in app._notifications]

    asyncio.run(main())
    assert seen["screen"] == "TrainingScreen" and seen["step"] == 0
    for what in ("the explorer not opened", "no step traced", "the snapshot not opened"):
        assert any(n.startswith(f"{what}: ") and "past the class limit of 1 MB" in n
                   for n in seen["notes"]), (what, seen["notes"])


def test_memory_reason_names_the_use_and_the_limit():
    used = resident_bytes()
    if used is None:
        pytest.skip("no /proc: the resident size is not known here")
    settings = ClassSettings(enabled=True, memory_limit_mb=1)
    reason = memory_reason(settings)
    assert reason.endswith(" MB in use, past the class limit of 1 MB")
    assert int(reason.split()[0]) >= 10  # MB: no Python process is smaller
    assert memory_reason(dataclasses.replace(settings, memory_limit_mb=0)) is None
    assert memory_reason(dataclasses.replace(settings, enabled=False)) is None
    assert memory_reason(dataclasses.replace(settings, memory_limit_mb=10**6)) is None


# -- tui-tfs serve ------------------------------------------------------------------------------------
def test_serve_starts_every_tab_in_class_mode_with_the_servers_config(tmp_path, monkeypatch):
    from tui_tfs.serve import TabCommand

    monkeypatch.delenv("TUI_TFS_CONFIG", raising=False)
    config = write(tmp_path / "class.toml", "[class]\nmemory_limit_mb = 500\n")
    argv = TabCommand("reverse", None, False, True, str(config)).argv()
    assert argv[3:] == ["--class", "--config", str(config), "explore", "reverse"]
    settings = settings_from_args(build_parser().parse_args(argv[3:]))
    assert settings.enabled and settings.memory_limit_mb == 500


def test_serve_refuses_a_bad_config_before_it_listens(tmp_path):
    path = write(tmp_path / "config.toml", "[class]\nenabled = true\nmemory_limit_mb = 1.5\n")
    run = subprocess.run([sys.executable, "-m", "tui_tfs.cli", "serve", "--class", "--config",
                          str(path), "--port", "8765"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip() == (f"tui-tfs serve: {path}, line 3: class.memory_limit_mb must "
                                  f"be a whole number of megabytes, like 600 (0: no limit), "
                                  f"got 1.5")
