"""Headless Chromium driven through its DevTools protocol (a JSON-RPC websocket), with
aiohttp's client: just what the browser test needs (open a page, type, press keys, run JS).

Chromium comes from the system's packages (`apt-get install chromium`); it is started with a
new empty profile and the flags that keep it off the network (this machine has none: without
them it waits on connections). The DevTools port is Chromium's pick, read from the
DevToolsActivePort file it writes into the profile.
"""
from __future__ import annotations

import asyncio
import itertools
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp

QUIET_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]

# textual-serve keeps its xterm.js Terminal inside a closure; this catches it as the page's
# script stores it (`this.terminal = new Terminal(...)`), so the test reads xterm's own buffer:
# the text the browser shows, row by row.
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, 'terminal', {configurable: true, set(value) {
  Object.defineProperty(this, 'terminal', {value, writable: true, configurable: true,
                                           enumerable: true});
  window.xtermForTest = value;
}});
"""
READ_ROWS = """window.xtermForTest ? Array.from({length: window.xtermForTest.rows},
  (_, row) => window.xtermForTest.buffer.active.getLine(row).translateToString(true)) : null"""
READ_COLOURS = """(() => {
  const term = window.xtermForTest, colours = new Set();
  for (let y = 0; y < term.rows; y++) {
    const line = term.buffer.active.getLine(y);
    for (let x = 0; x < term.cols; x++) {
      const cell = line.getCell(x);
      if (cell.isFgRGB()) colours.add(cell.getFgColor());
      if (cell.isBgRGB()) colours.add(cell.getBgColor());
    }
  }
  return Array.from(colours);
})()"""

# DevTools key events: what a real keyboard sends for keys that are not plain text
NAMED_KEYS = {"Enter": ("Enter", 13, "\r"), "Escape": ("Escape", 27, ""),
              "Tab": ("Tab", 9, "\t"), "Down": ("ArrowDown", 40, ""), "Up": ("ArrowUp", 38, "")}


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one page; use as `async with Browser() as browser`."""

    def __init__(self, width: int = 760, height: int = 560) -> None:
        self.size = (width, height)
        self.ids = itertools.count(1)

    async def __aenter__(self) -> Browser:
        # Chromium's helper processes may still write to the profile as the browser ends
        self.profile = tempfile.TemporaryDirectory(prefix="tui-tfs-chromium-",
                                                   ignore_cleanup_errors=True)
        self.log = open(Path(self.profile.name) / "chromium.log", "wb")
        self.process = subprocess.Popen(
            [chromium_path(), *QUIET_FLAGS, f"--user-data-dir={self.profile.name}",
             "--remote-debugging-port=0", f"--window-size={self.size[0]},{self.size[1]}",
             "about:blank"], stdout=self.log, stderr=self.log)
        self.http = aiohttp.ClientSession()
        try:
            port = await self._devtools_port()
            async with self.http.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            page = next(target for target in targets if target["type"] == "page")
            self.socket = await self.http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
            await self.call("Page.enable")
            await self.call("Page.addScriptToEvaluateOnNewDocument", source=CATCH_TERMINAL)
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        self.profile.cleanup()

    async def _devtools_port(self, seconds: float = 60) -> int:
        active = Path(self.profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"chromium ended ({self.process.returncode}): "
                                     f"{self._log_tail()}")
            text = active.read_text() if active.exists() else ""
            if text.strip():
                return int(text.split()[0])
            await asyncio.sleep(0.1)
        raise AssertionError(f"chromium opened no DevTools port in {seconds} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        self.log.flush()
        return (Path(self.profile.name) / "chromium.log").read_text(errors="replace")[-2000:]

    # -- the protocol --------------------------------------------------------------------------
    async def call(self, method: str, **params) -> dict:
        """Send one command, return its result (events that arrive meanwhile are dropped)."""
        number = next(self.ids)
        await self.socket.send_json({"id": number, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self.socket.receive_json(), 60)
            if message.get("id") == number:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def js(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                                 awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression[:60]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def open(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def type_text(self, text: str) -> None:
        """Characters, each a key press with its text (as a keyboard types them)."""
        for char in text:
            await self.call("Input.dispatchKeyEvent", type="keyDown", key=char, text=char,
                            windowsVirtualKeyCode=ord(char.upper()) if char.isalnum() else 0)
            await self.call("Input.dispatchKeyEvent", type="keyUp", key=char)

    async def press(self, key: str, ctrl: bool = False) -> None:
        """A named key (NAMED_KEYS) or one character, with Ctrl when asked."""
        name, code, text = NAMED_KEYS[key] if key in NAMED_KEYS else (key, ord(key.upper()), key)
        if ctrl:
            text = chr(ord(key.lower()) - 96)  # Ctrl+T: the control character \x14
        await self.call("Input.dispatchKeyEvent", type="keyDown", key=name, text=text,
                        windowsVirtualKeyCode=code, modifiers=2 if ctrl else 0)
        await self.call("Input.dispatchKeyEvent", type="keyUp", key=name,
                        windowsVirtualKeyCode=code, modifiers=2 if ctrl else 0)

    async def focus_terminal(self) -> None:
        """Keys go to the terminal from now on (as after a click into it)."""
        await self.js("window.xtermForTest.focus()")

    async def rows(self) -> list[str] | None:
        """The terminal's rows as text (None before the page made its terminal)."""
        return await self.js(READ_ROWS)

    async def colours(self) -> list[tuple[int, int, int]]:
        """Every RGB colour (foreground or background) of the terminal's cells."""
        return [(value >> 16 & 255, value >> 8 & 255, value & 255)
                for value in await self.js(READ_COLOURS)]

    async def wait_for_text(self, text: str, seconds: float = 60) -> list[str]:
        """The terminal's rows once one of them shows `text`."""
        deadline = time.monotonic() + seconds
        rows = None
        while time.monotonic() < deadline:
            rows = await self.rows()
            if rows and any(text in row for row in rows):
                return rows
            await asyncio.sleep(0.3)
        shown = "\n".join(rows) if rows else await self.js("document.body.innerText")
        raise AssertionError(f"{text!r} never appeared in the browser; it showed:\n{shown}")
