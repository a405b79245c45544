"""The real command on a pseudo-terminal that goes away with no SIGHUP (it is not the app's
controlling terminal): the input thread finds the terminal gone, the app saves its unsaved
run and ends. Before, that thread selected a file that was always ready and never gave a
byte, a core spun, and the app trained on with nobody there."""
from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tui_tfs.checkpoints import checkpoint_info

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(sys.platform != "linux", reason="a Linux pseudo-terminal")]
ROOT = Path(__file__).resolve().parents[2]


def read_until(master: int, needle: bytes, timeout: float = 60.0) -> bytes:
    seen, deadline = b"", time.monotonic() + timeout
    while needle not in seen:
        assert time.monotonic() < deadline, f"{needle!r} never came; the tail: {seen[-400:]!r}"
        if select.select([master], [], [], 0.2)[0]:
            seen += os.read(master, 65536)
    return seen


def test_a_terminal_gone_without_sighup_ends_the_app_and_saves_the_run(tmp_path):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    app = subprocess.Popen([sys.executable, "-m", "tui_tfs.cli", "--ascii", "explore", "reverse"],
                           stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path,
                           start_new_session=True,  # a session with no controlling terminal
                           env={**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color",
                                "LANG": "C.UTF-8"})
    os.close(slave)
    try:
        read_until(master, b"EndFwd")  # the explorer's footer
        os.write(master, b"\x14")  # Ctrl+T
        read_until(master, b"Start/Pause")  # the training screen's footer
        os.write(master, b" ")
        read_until(master, b"RUNNING")
        time.sleep(1.0)  # some steps
        os.close(master)  # the terminal goes
        master = -1
        app.wait(timeout=30)
    finally:
        if master >= 0:
            os.close(master)
        if app.poll() is None:
            app.kill()
    saved = checkpoint_info(tmp_path / "checkpoints" / "reverse.safetensors")
    assert saved is not None and saved.step > 0
