"""The terminal driver: Textual's Linux driver without ten wake-ups a second while idle.

Textual's input thread waits for a key with `select(0.1)` so that it can notice the app
exiting and time out a lone Esc; that is ten wake-ups a second whatever the user does, about
0.1% of a core per idle app, 3% of a core for thirty idle sessions on one shared machine
(tests/tui/measure_class.py). This driver's input thread sleeps until a key arrives, polling
at Textual's 0.1 s only while its parser waits to time something out (an Esc that may start
a sequence), and the exit wakes it through a pipe that setting the exit event writes to.

The rest (the parser, the events, suspend and resume) is Textual's own `LinuxDriver`;
`TfsApp.get_driver_class` picks this one wherever Textual would pick that one. Under
`tui-tfs serve` Textual's `WebDriver` reads the server's pipe with the same 0.1 s wait (and
ticks its parser only after one): `QuietWebDriver` polls so for QUIET_AFTER seconds after the
last input (a lone Esc is timed out then), and sleeps after. The headless driver of tests is
left alone.
"""
from __future__ import annotations

import os
import selectors
import sys
import threading
import time
from codecs import getincrementaldecoder

from textual import messages
from textual._loop import loop_last
from textual._parser import ParseError
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver
from textual.drivers.web_driver import WebDriver

POLL = 0.1  # seconds: Textual's own wait while its parser has a timeout pending
QUIET_AFTER = 2.0  # seconds after the last input from which the web driver's reader sleeps


def wake_pipe() -> tuple[int, int]:
    """(read end, write end), both non-blocking."""
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    return read, write


def drain(fd: int) -> None:
    try:
        while os.read(fd, 64):
            pass
    except BlockingIOError:
        pass


class WakingEvent(threading.Event):
    """An Event that also writes a byte to a pipe when set, to wake a thread in select()."""

    def __init__(self, wake_fd: int) -> None:
        super().__init__()
        self.wake_fd = wake_fd

    def set(self) -> None:
        super().set()
        try:
            os.write(self.wake_fd, b"x")
        except (BlockingIOError, OSError):  # the pipe is full: the thread is woken already
            pass


class QuietLinuxDriver(LinuxDriver):
    """LinuxDriver whose input thread blocks instead of polling; see the module docstring."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._wake_read, wake_write = wake_pipe()
        self.exit_event = WakingEvent(wake_write)

    def run_input_thread(self) -> None:
        """Textual's loop (linux_driver.py), with the waits of `_wait`."""
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        selector.register(self._wake_read, selectors.EVENT_READ)
        fileno = self.fileno
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode

        def process(events: list[tuple[selectors.SelectorKey, int]], final: bool = False) -> bool:
            """Feed what arrived to the parser; False once the terminal is gone."""
            keys = [(key, mask) for key, mask in events if key.fd == fileno]
            for last, (_key, mask) in loop_last(keys):
                if mask & selectors.EVENT_READ:
                    try:
                        raw = os.read(fileno, 1024 * 4)
                    except OSError:  # EIO: the terminal hung up
                        return False
                    if not raw:  # end of input: a closed terminal, or stdin piped and ended
                        return False
                    for event in parser.feed(decode(raw, final=final and last)):
                        self.process_message(event)
            for event in parser.tick():
                self.process_message(event)
            return True

        try:
            while not self.exit_event.is_set():
                if not process(self._wait(selector, parser)):
                    # Textual's loop went on selecting a file that is always ready and never
                    # gives a byte: a core spun. The app leaves as on SIGHUP (it saves first).
                    self._app.hung_up = True
                    self._app.post_message(messages.ExitApp())
                    return
            selector.unregister(self.fileno)
            process(selector.select(POLL), final=True)
        finally:
            selector.close()
            try:
                for _ in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass

    def _wait(self, selector: selectors.BaseSelector, parser: XTermParser):
        """The ready files: without a timeout while the parser has none pending."""
        pending = getattr(parser, "_timeout_time", 0) is not None  # unknown Textual: poll
        events = selector.select(POLL if pending else None)
        if any(key.fd == self._wake_read for key, _ in events):
            drain(self._wake_read)
        return events


class QuietInputReader:
    """What WebDriver iterates over: the server's bytes from stdin (b"" after a quiet poll,
    so the parser is ticked), polling at POLL only for QUIET_AFTER seconds after an input."""

    def __init__(self) -> None:
        self._fileno = sys.__stdin__.fileno()
        self._wake_read, wake_write = wake_pipe()
        self._exit = WakingEvent(wake_write)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fileno, selectors.EVENT_READ)
        self._selector.register(self._wake_read, selectors.EVENT_READ)

    def close(self) -> None:
        """Ends the iteration, at once: the wake pipe ends the wait."""
        self._exit.set()

    def __iter__(self):
        last_input = time.monotonic()
        while not self._exit.is_set():
            recent = time.monotonic() - last_input < QUIET_AFTER
            for key, mask in self._selector.select(POLL if recent else None):
                if key.fd == self._wake_read:
                    drain(self._wake_read)
                elif mask & selectors.EVENT_READ:
                    data = os.read(self._fileno, 1024)
                    if not data:
                        return
                    last_input = time.monotonic()
                    yield data
            yield b""


class QuietWebDriver(WebDriver):
    """WebDriver with `QuietInputReader`; see the module docstring."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._input_reader = QuietInputReader()
