"""An idle app sleeps: in a real terminal (tmux), the app's threads do not wake while nobody
presses a key (Textual's input thread alone used to wake ten times a second, 0.1% of a core
per session: 3% for a class of thirty), and a lone Esc and quitting still get through."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_tmux import Tmux, _command

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(),
                                reason="counts the threads' wake-ups in /proc (Linux)")


def app_pid(tmux: Tmux) -> int:
    """The app: the child of the pane's shell."""
    shell = tmux.run("list-panes", "-t", "t", "-F", "#{pane_pid}").strip()
    children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
    return int(children[0])


def wakeups(pid: int) -> int:
    """Context switches of every thread of `pid` so far (a sleeping thread makes none)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


@pytest.mark.timeout(120)
def test_an_idle_app_does_not_wake_up_and_still_hears_esc_and_quits():
    tmux = Tmux()
    try:
        tmux.start(_command())
        tmux.wait_for("forward 1/")
        pid = app_pid(tmux)
        time.sleep(2)  # the first frame's follow-ups (a resize, the footer) are done
        before = wakeups(pid)
        time.sleep(3)
        woke = wakeups(pid) - before
        assert woke <= 3, f"the idle app's threads woke {woke} times in 3 s"
        tmux.keys("Escape")  # a lone Esc: the parser's timeout must still fire
        tmux.wait_for("o Open file")  # the explorer closed: the picker
        tmux.keys("q")
        tmux.wait_for("app-exit-status 0", timeout=10)
    finally:
        tmux.close()
