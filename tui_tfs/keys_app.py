"""The app with its keys recorded or replayed: `tui-tfs explore --record FILE` and
`--replay FILE [--speed N]` (tui_tfs.keys_file holds the file format).

Recording sees every key the terminal sends, before any widget does (App.on_event), with its
time since the app started. Replaying posts the file's keys to the app at their times divided
by the speed, as if typed; any key the user presses stops the replay (that key is not passed
on), and the app carries on from there under the user's hands.
"""
from __future__ import annotations

import asyncio
import time

from textual import events

from .app import TfsApp
from .keys_file import KeyPress, KeysWriter


class KeysApp(TfsApp):
    """TfsApp with a recorder and/or a replay; see the module docstring."""

    def __init__(self, *args, record: KeysWriter | None = None,
                 replay: list[KeyPress] | None = None, speed: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.recorder = record
        self.replay_keys = list(replay or [])
        self.speed = speed
        self.replaying = False
        self.replayed = 0  # keys posted so far
        self._posted: set[int] = set()  # id() of replayed key events not yet handled
        self._started = time.monotonic()

    def on_mount(self) -> None:  # TfsApp.on_mount runs too (Textual calls both)
        self._started = time.monotonic()
        if self.replay_keys:
            self.replaying = True
            self.run_worker(self._replay(), name="replay", group="replay", exclusive=True)

    async def _replay(self) -> None:
        start = time.monotonic()
        for press in self.replay_keys:
            delay = press.t / self.speed - (time.monotonic() - start)
            if delay > 0:
                await asyncio.sleep(delay)
            if not self.replaying:
                return
            event = events.Key(press.key, press.char)
            self._posted.add(id(event))  # the event stays alive in the queue until handled
            self.post_message(event)
            self.replayed += 1
        self.replaying = False
        self.notify("replay finished: the keys are yours", timeout=3)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            replayed = id(event) in self._posted
            self._posted.discard(id(event))
            if self.replaying and not replayed:
                self.replaying = False  # the user takes over; this key only stops the replay
                self.workers.cancel_group(self, "replay")
                self.notify("replay stopped", timeout=3)
                return
            if self.recorder is not None:
                self.recorder.add(KeyPress(time.monotonic() - self._started, event.key,
                                           event.character))
        await super().on_event(event)

    def on_unmount(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
