"""A real `tui-tfs serve` for the tests: started on a free port, asked over real HTTP, its app
processes counted from /proc, stopped with SIGTERM."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick for port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses with a socket listening on `port`, from /proc/net/tcp."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the apps textual-serve started, one per tab)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # ended while we looked
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


class Served:
    """`tui-tfs serve ARGS` in a subprocess; its output (stdout and stderr) goes to `log`."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = log
        environment = {**os.environ, "PYTHONPATH": str(ROOT)}
        for chosen_by_the_test in ("TUI_TFS_TOKEN", "NO_COLOR"):
            environment.pop(chosen_by_the_test, None)
        environment.update(env or {})
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tui_tfs.cli", "serve", "--port", str(self.port), *args],
                stdout=out, stderr=subprocess.STDOUT, env=environment, cwd=ROOT)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_listening(self, seconds: float = 60) -> None:
        """Until the port accepts connections; fails with the server's output if it ended."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve ended ({self.process.returncode}): {self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"serve did not listen within {seconds} s: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def apps(self) -> list[int]:
        return children(self.process.pid)

    def stop(self) -> list[int]:
        """SIGTERM (as Ctrl+C), then SIGKILL after 30 s; returns the apps still running once
        the server ended (and ends them: nothing the test started outlives it)."""
        apps = self.apps()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        left = [pid for pid in apps if Path(f"/proc/{pid}").exists()]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        return left
