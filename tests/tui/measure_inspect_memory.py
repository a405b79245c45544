"""The resident size of the real app in tmux (80x24) as a user inspects char-lm's training.

Not a test (tests/tui/test_memory.py is): run it by hand from the repository,

    python tests/tui/measure_inspect_memory.py [inspects, default 10]

It opens `tui-tfs explore char-lm`, trains for a few seconds (Ctrl+T, space, space), then
inspects (i) and goes back (Esc) again and again, printing VmRSS of the app's process from
/proc/<pid>/status after each step. Uses its own tmux socket.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOCKET = "tui-tfs-measure-memory"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", SOCKET, *args], check=True, capture_output=True,
                          text=True, timeout=30).stdout


def wait_for(text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in tmux("capture-pane", "-p", "-t", "t"):
            return
        time.sleep(0.2)
    raise SystemExit(f"{text!r} never appeared:\n{tmux('capture-pane', '-p', '-t', 't')}")


def rss_mb(pid: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    raise SystemExit(f"no VmRSS for process {pid}")


def main(inspects: int) -> None:
    command = (f"cd {shlex.quote(str(ROOT))} && export LANG=C.UTF-8 TERM=xterm-256color "
               f"PYTHONPATH={shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} "
               f"-m tui_tfs.cli explore char-lm; sleep 30")
    tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "80", "-y", "24",
         f"sh -c {shlex.quote(command)}")
    try:
        shell = tmux("list-panes", "-t", "t", "-F", "#{pane_pid}").strip()
        wait_for("forward 1/")
        pid = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True,
                             check=True).stdout.split()[0]
        time.sleep(1)
        print(f"explorer open: {rss_mb(pid)} MB")
        tmux("send-keys", "-t", "t", "C-t")
        wait_for("space starts training")
        tmux("send-keys", "-t", "t", "Space")
        wait_for("RUNNING")
        time.sleep(4)
        tmux("send-keys", "-t", "t", "Space")
        wait_for("PAUSED")
        time.sleep(1)
        print(f"trained, paused: {rss_mb(pid)} MB")
        for n in range(1, inspects + 1):
            tmux("send-keys", "-t", "t", "i")
            wait_for("forward 1/")
            time.sleep(1)
            inspecting = rss_mb(pid)
            tmux("send-keys", "-t", "t", "Escape")
            wait_for("PAUSED")
            time.sleep(1)
            print(f"inspect {n}: {inspecting} MB open, {rss_mb(pid)} MB after closing")
    finally:
        tmux("kill-server")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
