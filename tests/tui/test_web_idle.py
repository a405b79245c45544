"""An idle app served to a browser sleeps too: run as `tui-tfs serve` runs each tab (Textual's
web driver, the server's pipes on stdin and stdout), its threads do not wake while no input
comes (Textual's reader polled ten times a second), and the server's quit still ends it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_tmux_idle import wakeups

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(),
                                reason="counts the threads' wake-ups in /proc (Linux)")


def packet(kind: bytes, payload: bytes) -> bytes:
    """textual-serve's framing of what it writes to an app's stdin."""
    return kind + len(payload).to_bytes(4, "big") + payload


@pytest.mark.timeout(120)
def test_a_served_app_sleeps_while_idle_and_quits_when_told():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80", "ROWS": "24",
           "TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver",
           "TEXTUAL_COLOR_SYSTEM": "truecolor"}
    app = subprocess.Popen([sys.executable, "-m", "tui_tfs.cli", "explore", "reverse"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    seen = bytearray()
    reader = threading.Thread(target=lambda: [seen.extend(c) for c in iter(
        lambda: app.stdout.read1(65536), b"")], daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while b"forward" not in seen:
            assert time.monotonic() < deadline and app.poll() is None, bytes(seen[-500:])
            time.sleep(0.1)
        app.stdin.write(packet(b"D", b"n"))  # a key: the reader polls a while after input
        app.stdin.flush()
        time.sleep(4)  # past the reader's 2 s of polling after an input, and the redraw
        before = wakeups(app.pid)
        time.sleep(3)
        woke = wakeups(app.pid) - before
        assert woke <= 3, f"the idle served app's threads woke {woke} times in 3 s"
        app.stdin.write(packet(b"M", json.dumps({"type": "quit"}).encode()))
        app.stdin.flush()
        assert app.wait(timeout=20) == 0
    finally:
        if app.poll() is None:
            app.kill()
