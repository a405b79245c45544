"""Browser-like clients of `tui-tfs serve` for measure_class.py: each a websocket to /ws, as
the served page's script opens one (80x24, one app process per connection), keys sent as the
page sends them (["stdin", text]), and every write of the app timed as it arrives.

    web = ServedSessions(["--class"])        # starts `tui-tfs --class serve reverse` on loopback
    ids = web.start(30)                      # 30 tabs; web.pids() -> {id: app pid}
    web.press(ids[0], "n")                   # (first, last) write after the key, in seconds
    web.close()
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
ESCAPES = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")
KEEP = 20_000  # characters of recent output kept per tab, to find text in


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServedSessions:
    """See the module docstring. Its websockets live on an event loop in a thread of its own."""

    def __init__(self, flags: list[str], quiet: float) -> None:
        self.port = free_port()
        self.quiet = quiet
        self.server = subprocess.Popen(
            [sys.executable, "-m", "tui_tfs.cli", *flags, "serve", "reverse", "--port",
             str(self.port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.text: list[str] = []  # recent output of each tab, escapes removed
        self.writes: list[list[float]] = []  # times of each tab's writes since the last press
        self.pid_of: dict[int, int] = {}

    def _run(self, coroutine, timeout: float = 120.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self, n: int) -> list[int]:
        deadline = time.monotonic() + 60
        while True:  # until the server listens
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"tui-tfs serve did not start: {self.server.stderr.read()}")
                time.sleep(0.3)
        self._run(self._open_session())
        for i in range(n):  # one at a time, so each tab's app process is known by its pid
            self._run(self._connect())
            self.pid_of[i] = self._new_app_pid(set(self.pid_of.values()))
        return list(range(n))

    async def _open_session(self) -> None:
        self.http = aiohttp.ClientSession()

    async def _connect(self) -> None:
        url = f"http://127.0.0.1:{self.port}"
        ws = await self.http.ws_connect(f"{url}/ws?width=80&height=24", origin=url,
                                        max_msg_size=0)
        index = len(self.sockets)
        self.sockets.append(ws)
        self.text.append("")
        self.writes.append([])
        self.loop.create_task(self._listen(index, ws))

    async def _listen(self, index: int, ws) -> None:
        decode = __import__("codecs").getincrementaldecoder("utf-8")(errors="replace").decode
        async for message in ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                self.writes[index].append(time.perf_counter())
                text = self.text[index] + ESCAPES.sub("", decode(message.data))
                self.text[index] = text[-KEEP:]

    def _new_app_pid(self, known: set[int], timeout: float = 60.0) -> int:
        """The app process started for the newest tab: a tui_tfs.cli explore under the server."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pid in self._apps():
                if pid not in known:
                    return pid
            time.sleep(0.1)
        raise SystemExit("a tab's app process never started")

    def _apps(self) -> list[int]:
        """App processes below the server (textual-serve starts each through a shell)."""
        found, todo = [], [self.server.pid]
        while todo:
            pid = todo.pop()
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"tui_tfs.cli" in command and b"explore" in command:
                found.append(pid)
            todo += [int(c) for c in children]
        return sorted(found)

    def pids(self) -> dict[int, int]:
        return dict(self.pid_of)

    def server_pid(self) -> int:
        return self.server.pid

    def screen(self, index: int) -> str:
        return self.text[index]

    def keys(self, index: int, *keys: str) -> None:
        names = {"C-t": "\x14", "Space": " "}
        for key in keys:
            data = names.get(key, key)
            self._run(self.sockets[index].send_str(json.dumps(["stdin", data])))

    def press(self, index: int, key: str) -> tuple[float, float] | None:
        """(first, last) write of tab `index` after `key`, in seconds from the key."""
        self.writes[index] = []
        sent = time.perf_counter()
        self.keys(index, key)
        deadline = sent + 5.0
        while time.perf_counter() < deadline:
            times = list(self.writes[index])
            if times and time.perf_counter() - times[-1] >= self.quiet:
                return times[0] - sent, times[-1] - sent
            time.sleep(0.005)
        times = self.writes[index]
        return (times[0] - sent, times[-1] - sent) if times else None

    def close(self) -> None:
        async def shut() -> None:
            for ws in self.sockets:
                await ws.close()
            await self.http.close()
        try:
            self._run(shut(), timeout=30)
        finally:
            self.server.send_signal(signal.SIGINT)  # its Ctrl+C: stops every tab's app
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
            self.loop.call_soon_threadsafe(self.loop.stop)
