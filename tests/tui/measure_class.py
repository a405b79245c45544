"""Class scale: N sessions of the app on this machine at once, as a class would run them.

Not a test (speed lives in measurements, not in timed unit tests): run it by hand,

    python tests/tui/measure_class.py [--sessions 30] [--idle 30] [--trainers 5]
                                      [--presses 30] [--class]

Each session is `tui-tfs explore reverse` in its own window of a private tmux server (80x24,
its own socket; a window per session, as a terminal per student). It reports:

- RSS per idle session: VmRSS of each app process once all have drawn and settled (median and
  largest), beside RssAnon (the part no other process shares: libraries' pages are shared).
- CPU of all sessions together while idle, over --idle seconds: the time their threads spent
  on a CPU (/proc/PID/task/*/schedstat, nanoseconds), as % of one core.
- Keypress-to-redraw latency in session 1, first with all sessions idle, then while
  --trainers other sessions train (Ctrl+T, space: max speed): the method of
  measure_latency.py (press a key, wait until the app is idle again), timed from outside the
  app: the key goes in through a tmux control-mode client, which also reports each write the
  app makes to its terminal; the latency is from the key to the last write of the redraw
  (nothing more for QUIET seconds). n and p alternate (next / previous operation).
- Training throughput per training session: the step counter on each trainer's screen,
  read at the start and the end of the latency phase.
- The machine's own load over the idle window (/proc/stat busy time minus the sessions'),
  so a number taken beside other work says so.
"""
from __future__ import annotations

import argparse
import os
import queue
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUIET = 0.15  # seconds without a write from the app: its redraw is complete
READY = "forward 1/"  # on the explorer's status line once the first frame is drawn
STEP = re.compile(r"step\s+([\d,]+) / ([\d,]+)")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Tmux:
    """A private tmux server with one session, a window per app (window 0: session 1)."""

    def __init__(self) -> None:
        self.socket = f"tui-tfs-class-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True,
                              capture_output=True, text=True, timeout=60).stdout

    def start(self, n: int, command: str) -> list[str]:
        """Start `n` windows running `command`; returns their pane ids (%0, %1 ...)."""
        env = (f"cd {shlex.quote(str(ROOT))} && export LANG=C.UTF-8 TERM=xterm-256color "
               f"PYTHONPATH={shlex.quote(str(ROOT))} && exec {command}")
        self.run("-f", "/dev/null", "new-session", "-d", "-s", "class", "-x", "80", "-y", "24",
                 f"sh -c {shlex.quote(env)}")
        self.run("set-option", "-g", "status", "off")
        self.run("set-option", "-g", "default-size", "80x24")
        self.run("set-option", "-g", "remain-on-exit", "on")
        for _ in range(n - 1):
            self.run("new-window", "-d", "-t", "class:", f"sh -c {shlex.quote(env)}")
        panes = self.run("list-panes", "-s", "-t", "class", "-F", "#{pane_id} #{pane_pid}")
        for window in self.run("list-windows", "-t", "class", "-F", "#{window_id}").split():
            self.run("resize-window", "-t", window, "-x", "80", "-y", "24")
        return [line.split()[0] for line in panes.splitlines()]

    def pids(self) -> dict[str, int]:
        panes = self.run("list-panes", "-s", "-t", "class", "-F", "#{pane_id} #{pane_pid}")
        return {p: int(pid) for p, pid in (line.split() for line in panes.splitlines())}

    def screen(self, pane: str) -> str:
        return self.run("capture-pane", "-p", "-t", pane)

    def keys(self, pane: str, *keys: str) -> None:
        self.run("send-keys", "-t", pane, *keys)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=60)


class TmuxSessions:
    """The sessions in tmux windows, keys and timings through a control client."""

    def __init__(self, command: str) -> None:
        self.tmux = Tmux()
        self.command = command
        self.control: ControlClient | None = None

    def start(self, n: int) -> list[str]:
        panes = self.tmux.start(n, self.command)
        self.control = ControlClient(self.tmux)
        return panes

    def pids(self) -> dict[str, int]:
        return self.tmux.pids()

    def screen(self, pane: str) -> str:
        return self.tmux.screen(pane)

    def keys(self, pane: str, *keys: str) -> None:
        self.tmux.keys(pane, *keys)

    def press(self, pane: str, key: str) -> tuple[float, float] | None:
        return self.control.press(pane, key)

    def close(self) -> None:
        if self.control is not None:
            self.control.close()
        self.tmux.close()


class ControlClient:
    """`tmux -C attach`: sends keys and hears every write a pane's program makes, with times."""

    def __init__(self, tmux: Tmux) -> None:
        self.process = subprocess.Popen(
            ["tmux", "-L", tmux.socket, "-C", "attach", "-t", "class"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
        self.writes: queue.Queue[tuple[float, str]] = queue.Queue()  # (time, pane id)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith(b"%output "):
                self.writes.put((time.perf_counter(), line.split(b" ", 2)[1].decode()))

    def press(self, pane: str, key: str) -> tuple[float, float] | None:
        """(first, last) write of `pane` after `key`, in seconds from the key; None if the
        app wrote nothing within 5 s."""
        while not self.writes.empty():
            self.writes.get_nowait()
        sent = time.perf_counter()
        self.process.stdin.write(f"send-keys -t {pane} {key}\n".encode())
        self.process.stdin.flush()
        first = last = None
        deadline = sent + 5.0
        while True:
            wait = (last + QUIET if last is not None else deadline) - time.perf_counter()
            if wait <= 0:
                break
            try:
                at, from_pane = self.writes.get(timeout=wait)
            except queue.Empty:
                break
            if from_pane == pane:
                first = at if first is None else first
                last = at
        return None if first is None else (first - sent, last - sent)

    def close(self) -> None:
        try:
            self.process.stdin.write(b"detach-client\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        self.process.wait(timeout=10)


# -- /proc ----------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """Time all threads of `pid` have spent on a CPU (schedstat: nanoseconds)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def run_and_wait(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of all threads of `pid`."""
    run = wait = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "schedstat").read_text().split()
            run, wait = run + int(fields[0]), wait + int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    return run / 1e9, wait / 1e9


def memory_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
            fields[name] = int(value.split()[0])
    return fields


def machine_busy() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLOCK_TICKS, sum(values[:8]) / CLOCK_TICKS


# -- phases ----------------------------------------------------------------------------------------
def wait_ready(sessions, ids: list, timeout: float) -> float:
    start = time.monotonic()
    waiting = set(ids)
    while waiting:
        if time.monotonic() - start > timeout:
            first = sorted(waiting)[0]
            raise SystemExit(f"{len(waiting)} sessions never drew; {first} shows:\n"
                             f"{sessions.screen(first)[-3000:]}")
        for one in sorted(waiting):
            if READY in sessions.screen(one):
                waiting.discard(one)
        time.sleep(0.5)
    return time.monotonic() - start


def idle_cpu(pids: list[int], seconds: float) -> tuple[float, float]:
    """(% of one core used by all `pids` together, % of one core used by everything else)."""
    before = [cpu_seconds(p) for p in pids]
    busy0, _ = machine_busy()
    start = time.perf_counter()
    time.sleep(seconds)
    elapsed = time.perf_counter() - start
    ours = sum(cpu_seconds(p) for p in pids) - sum(before)
    busy1, _ = machine_busy()
    return 100 * ours / elapsed, 100 * max(0.0, busy1 - busy0 - ours) / elapsed


def latency(sessions, probe, pid: int, presses: int) -> tuple[list[float], str]:
    """ms from each key to the last write of its redraw (n and p alternate), and what the
    app's threads did meanwhile, per press: on a CPU, and runnable but waiting for one."""
    out = []
    run0, wait0 = run_and_wait(pid)
    for i in range(presses):
        got = sessions.press(probe, "n" if i % 2 == 0 else "p")
        if got is not None:
            out.append(got[1] * 1000)
        time.sleep(0.3)
    run1, wait1 = run_and_wait(pid)
    return sorted(out), (f"per press, session 1's threads spent {1000 * (run1 - run0) / presses:.0f} "
                         f"ms on a CPU and {1000 * (wait1 - wait0) / presses:.0f} ms waiting for one")


def steps_on_screen(sessions, one) -> int | None:
    """The latest step counter the session drew (a served tab's text is its recent output)."""
    found = STEP.findall(sessions.screen(one))
    return int(found[-1][0].replace(",", "")) if found else None


def describe(values: list[float], unit: str) -> str:
    if not values:
        return "no values"
    values = sorted(values)
    p90 = values[max(0, int(0.9 * len(values)) - 1)]
    return (f"median {statistics.median(values):.0f} {unit}, p90 {p90:.0f} {unit}, "
            f"max {values[-1]:.0f} {unit} ({len(values)} presses)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle measurement")
    parser.add_argument("--trainers", type=int, default=5)
    parser.add_argument("--presses", type=int, default=30)
    parser.add_argument("--class", action="store_true", dest="class_mode",
                        help="start every session with --class")
    parser.add_argument("--serve", action="store_true",
                        help="through tui-tfs serve on loopback, a websocket per session")
    args = parser.parse_args()
    flags = ["--class"] if args.class_mode else []
    if args.serve:
        from measure_class_web import ServedSessions

        sessions = ServedSessions(flags, QUIET)
        what = f"tui-tfs {' '.join(flags + ['serve', 'reverse'])} on 127.0.0.1, a websocket each"
    else:
        command = shlex.join([sys.executable, "-m", "tui_tfs.cli", *flags, "explore", "reverse"])
        sessions = TmuxSessions(command)
        what = f"{command} in tmux windows"
    print(f"{args.sessions} sessions: {what} ({os.cpu_count()} cores; load average "
          f"{Path('/proc/loadavg').read_text().split()[:3]} before)")
    try:
        ids = sessions.start(args.sessions)
        took = wait_ready(sessions, ids, timeout=60 + 10 * args.sessions)
        print(f"all {len(ids)} drew their first frame within {took:.0f} s")
        time.sleep(10)  # let start-up settle (imports done, caches warm)
        pids = sessions.pids()
        memory = [memory_kb(pids[i]) for i in ids]
        rss = sorted(m["VmRSS"] / 1024 for m in memory)
        anon = sorted(m["RssAnon"] / 1024 for m in memory)
        print(f"RSS per idle session: median {statistics.median(rss):.1f} MB, largest "
              f"{rss[-1]:.1f} MB (not shared, RssAnon: median {statistics.median(anon):.1f} MB); "
              f"all {len(rss)}: {sum(rss) / 1024:.2f} GB")
        server = [sessions.server_pid()] if args.serve else []
        if server:
            print(f"the server's own RSS: {memory_kb(server[0])['VmRSS'] / 1024:.1f} MB")
        ours, others = idle_cpu([pids[i] for i in ids], args.idle)
        print(f"CPU of all {len(ids)} idle sessions over {args.idle:.0f} s: {ours:.2f}% of "
              f"one core ({ours / len(ids):.3f}% each); the rest of the machine meanwhile: "
              f"{others:.0f}% of one core")
        if server:
            mine, _ = idle_cpu(server, 10)
            print(f"the server's own CPU meanwhile (10 s): {mine:.2f}% of one core")
        time.sleep(1.0)
        probe, trainers = ids[0], ids[1:1 + args.trainers]
        quiet, spent = latency(sessions, probe, pids[probe], args.presses)
        print(f"keypress to redraw, session 1, all idle: {describe(quiet, 'ms')}\n  {spent}")
        for one in trainers:
            sessions.keys(one, "C-t")
        time.sleep(3)
        for one in trainers:
            sessions.keys(one, "Space")
        time.sleep(5)  # training under way, first evaluations done
        before = {t: (steps_on_screen(sessions, t), time.monotonic()) for t in trainers}
        busy, spent = latency(sessions, probe, pids[probe], args.presses)
        after = {t: (steps_on_screen(sessions, t), time.monotonic()) for t in trainers}
        print(f"keypress to redraw, session 1, {len(trainers)} others training: "
              f"{describe(busy, 'ms')}\n  {spent}")
        rates = [(after[t][0] - before[t][0]) / (after[t][1] - before[t][1])
                 for t in trainers if before[t][0] is not None and after[t][0] is not None]
        if rates:
            print(f"training throughput per training session: "
                  f"{', '.join(f'{r:.1f}' for r in rates)} steps/s "
                  f"(total {sum(rates):.1f} steps/s)")
        grown = sorted(memory_kb(pids[t])["VmRSS"] / 1024 for t in trainers)
        print(f"RSS of the training sessions now: {', '.join(f'{m:.0f}' for m in grown)} MB")
        print(f"load average after: {Path('/proc/loadavg').read_text().split()[:3]}")
    finally:
        sessions.close()


if __name__ == "__main__":
    main()
