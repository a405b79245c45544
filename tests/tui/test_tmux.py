"""The real command in a real terminal: tmux at 80x24, keys sent, the screen read back.

Starts `tui-tfs explore reverse` (or, while the console script is not installed or not yet
wired to the explorer, the same entry point through `python -c`), steps to the decoder's
cross-attention softmax, and reads the token labels and the map from the captured pane.
The app's stderr is left alone: Textual draws the screen there.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from conftest import forward_number, opening_trace

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(shutil.which("tmux") is None,
                                 reason="tmux is not installed (apt-get install tmux)")]

ROOT = Path(__file__).resolve().parents[2]


def _command() -> str:
    exe = shutil.which("tui-tfs")
    if exe and os.environ.get("TUI_TFS_TMUX_PYTHON") != "1":
        probe = subprocess.run([exe, "explore", "--help"], capture_output=True, text=True,
                               timeout=60)
        if probe.returncode == 0:
            return f"{shlex.quote(exe)} explore reverse"
    code = "from tui_tfs.app import run_explorer; run_explorer('reverse', None, None)"
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


class Tmux:
    """A private tmux server (its own socket) holding one 80x24 session, whose app runs in a
    directory of its own (`cwd`): closing the pane hangs up the app, which then saves any
    unsaved run there, never in the checkout."""

    def __init__(self) -> None:
        self.socket = f"tui-tfs-test-{uuid.uuid4().hex[:8]}"
        self.cwd = Path(tempfile.mkdtemp(prefix="tui-tfs-tmux-"))

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, capture_output=True,
                              text=True, timeout=30).stdout

    def start(self, command: str) -> None:
        env = f"cd {shlex.quote(str(self.cwd))} && export LANG=C.UTF-8 TERM=xterm-256color " \
              f"PYTHONPATH={shlex.quote(str(ROOT))} && {command}"
        # The shell outlives the app and prints its exit status, so a test can wait for the
        # app to quit and read how it ended; the pane stays readable until close().
        self.run("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "80", "-y", "24",
                 f"sh -c {shlex.quote(env + '; echo app-exit-status $?; sleep 60')}")
        self.run("set-option", "-g", "status", "off")
        self.run("resize-window", "-t", "t", "-x", "80", "-y", "24")

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "t", *keys)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")

    def close(self) -> None:
        """End the server (the app hangs up), wait for what runs in `cwd` to end, remove it."""
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)
        deadline = time.monotonic() + 15
        while _running_in(self.cwd) and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(self.cwd, ignore_errors=True)


def _running_in(directory: Path) -> bool:
    """Some process has `directory` as its working directory (Linux /proc)."""
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if cwd.resolve() == directory.resolve():
                return True
        except OSError:
            pass
    return False


def test_real_terminal_reversal_attention():
    tmux = Tmux()
    try:
        tmux.start(_command())
        trace = opening_trace("reverse")
        tmux.wait_for(f"forward 1/{len(trace)}")
        tmux.keys("l")
        tmux.wait_for("Run to layer")
        tmux.keys("-l", "decoder.blocks.0.cross_attn.softmax")
        tmux.wait_for("decoder.blocks.0.cross_attn.softmax")  # typed into the filter
        tmux.keys("Enter")
        softmax = forward_number(trace, "decoder.blocks.0.cross_attn.softmax")
        # the status line names the event only once the jump is done: a key sent earlier
        # would land in the filter
        tmux.wait_for(f"forward {softmax}/{len(trace)}")
        tmux.keys("a")
        screen = tmux.wait_for("queries down, keys across")
        right = [line[29:] for line in screen.splitlines()]  # the tree is 28 columns wide
        assert any(re.match(r"\s*3 1 4 1 5\s", part) for part in right), screen  # keys across
        rows = [m.group(1) for part in right
                if (m := re.match(r"\s*(<s>|\d) ([ ▁▂▃▄▅▆▇█] ){5}", part))]  # weights, 0..1
        assert rows == ["<s>", "5", "1", "4", "1", "3"], screen  # queries down: the reversal
        assert f"forward {softmax}/{len(trace)}" in screen
        tmux.keys("q")
        tmux.wait_for("app-exit-status 0")
    finally:
        tmux.close()
