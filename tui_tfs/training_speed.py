"""The speed of training in the app: a cap on the steps a second, so a class can watch each
step land.

A mixin of `TrainingController` (tui_tfs/training.py): `run_for` asks `_pace` whether the next
step is due, and `_pace` waits on the controller's `clock` and `sleep` (replaceable, so tests
count what a fake clock allows instead of timing) in slices short enough that a pause or a
stop is still seen at once. It reads `steps_per_second`, `_last_step_at` and `_request`.
"""
from __future__ import annotations

import math

SPEEDS: tuple[float | None, ...] = (1, 2, 5, 10, 20, 50, None)  # steps a second; None: no cap
PACE_SLICE = 0.05  # seconds: the longest sleep while waiting for a step, so requests land fast


class Pacing:
    """`set_speed`, `change_speed` and `speed_label` for TrainingController."""

    def _pace(self, deadline: float, cancelled) -> bool:
        """Wait until the next step is due at `steps_per_second` (at once without a cap);
        False when the window (`deadline`), a cancel or a request comes first."""
        while True:
            rate = self.steps_per_second  # read each slice: the UI may change it meanwhile
            now = self.clock()
            due = -math.inf if rate is None else self._last_step_at + 1.0 / rate
            if now >= due:
                return True
            if now >= deadline or cancelled() or self._request is not None:
                return False
            self.sleep(min(due - now, deadline - now, PACE_SLICE))

    def set_speed(self, steps_per_second: float | None) -> None:
        """Cap training at this many steps a second (one of SPEEDS; None: no cap)."""
        if steps_per_second not in SPEEDS:
            raise ValueError(f"speed must be one of {SPEEDS} steps a second, "
                             f"got {steps_per_second!r}")
        self.steps_per_second = steps_per_second
        self.notice = f"speed: {self.speed_label}"

    def change_speed(self, by: int) -> str:
        """One notch slower (by < 0) or faster (by > 0) on SPEEDS; returns the new label."""
        at = SPEEDS.index(self.steps_per_second) + by
        self.set_speed(SPEEDS[max(0, min(at, len(SPEEDS) - 1))])
        return self.speed_label

    @property
    def speed_label(self) -> str:
        """"max", "1 step/s", "5 steps/s"."""
        rate = self.steps_per_second
        if rate is None:
            return "max"
        return f"{rate:g} step/s" if rate == 1 else f"{rate:g} steps/s"
