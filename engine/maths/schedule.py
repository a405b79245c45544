"""Learning-rate schedules: the learning rate as a function of the step number.

Steps count from 1 (the first update is step 1), as in the paper. A schedule is a small
object; call it with a step to get the learning rate for that update:

    constant       lr(s) = base                      (linear warmup over the first
                                                      warmup_steps if warmup_steps > 0)
    inverse_sqrt   lr(s) = base * min(s^-0.5, s * w^-1.5) / w^-0.5
                         = base * min(sqrt(w / s), s / w)
                   "Attention Is All You Need" (eq. 3) uses d_model^-0.5 in place of our
                   base / w^-0.5; normalising by w^-0.5 makes the peak, reached at s == w,
                   equal to base. Linear rise to the peak, then decay as 1/sqrt(s).
    cosine         linear warmup to base over w steps, then
                   lr(s) = min_lr + (base - min_lr) * (1 + cos(pi * (s - w) / (total - w))) / 2,
                   reaching min_lr at s == total and staying there.
"""
from __future__ import annotations

import math
from typing import Literal, get_args


class Schedule:
    """Base: `schedule(step)` -> learning rate for that step (step >= 1)."""

    name = "base"

    def __init__(self, base_lr: float, warmup_steps: int = 0):
        if isinstance(base_lr, bool) or not isinstance(base_lr, (int, float)) or not base_lr > 0:
            raise ValueError(f"base_lr must be a positive number, got {base_lr!r}")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        self.base_lr = float(base_lr)
        self.warmup_steps = warmup_steps

    def __call__(self, step: int) -> float:
        if step < 1:
            raise ValueError(f"step must be >= 1 (steps count from 1), got {step!r}")
        return self.lr(step)

    def lr(self, step: int) -> float:
        raise NotImplementedError

    def _warmup(self, step: int) -> float:
        """The linear rise base * s / w (the caller checks s <= w)."""
        return self.base_lr * step / self.warmup_steps

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class ConstantSchedule(Schedule):
    """base_lr at every step, after an optional linear warmup."""

    name = "constant"

    def lr(self, step: int) -> float:
        if step <= self.warmup_steps:
            return self._warmup(step)
        return self.base_lr


class InverseSqrtSchedule(Schedule):
    """The paper's schedule, scaled so the peak (at step == warmup_steps) is base_lr."""

    name = "inverse_sqrt"

    def __init__(self, base_lr: float, warmup_steps: int):
        super().__init__(base_lr, warmup_steps)
        if warmup_steps < 1:
            raise ValueError(f"inverse_sqrt needs warmup_steps >= 1 (the paper uses 4000), "
                             f"got {warmup_steps!r}")

    def lr(self, step: int) -> float:
        w = self.warmup_steps
        return self.base_lr * min(step**-0.5, step * w**-1.5) / w**-0.5


class WarmupCosineSchedule(Schedule):
    """Linear warmup to base_lr, then half a cosine down to min_lr at total_steps."""

    name = "cosine"

    def __init__(self, base_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0):
        super().__init__(base_lr, warmup_steps)
        is_int = isinstance(total_steps, int) and not isinstance(total_steps, bool)
        if not is_int or total_steps <= warmup_steps:
            raise ValueError(
                f"total_steps must be an integer greater than warmup_steps ({warmup_steps}), "
                f"got {total_steps!r}; set it to the number of training steps"
            )
        is_number = isinstance(min_lr, (int, float)) and not isinstance(min_lr, bool)
        if not is_number or not 0 <= min_lr <= base_lr:
            raise ValueError(f"min_lr must be in [0, base_lr={base_lr}], got {min_lr!r}")
        self.total_steps = total_steps
        self.min_lr = float(min_lr)

    def lr(self, step: int) -> float:
        if step <= self.warmup_steps:
            return self._warmup(step)
        progress = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
        return self.min_lr + (self.base_lr - self.min_lr) * cosine


ScheduleName = Literal["constant", "inverse_sqrt", "cosine"]  # what TrainConfig.schedule may name
SCHEDULES: tuple[str, ...] = get_args(ScheduleName)


def build_schedule(name: str, base_lr: float, warmup_steps: int = 0,
                   total_steps: int | None = None, min_lr: float = 0.0) -> Schedule:
    """A schedule by name; settings a schedule does not use are ignored."""
    key = str(name).lower()
    if key == "constant":
        return ConstantSchedule(base_lr, warmup_steps)
    if key == "inverse_sqrt":
        return InverseSqrtSchedule(base_lr, warmup_steps)
    if key == "cosine":
        if total_steps is None:
            raise ValueError("the cosine schedule needs total_steps (the number of training steps)")
        return WarmupCosineSchedule(base_lr, warmup_steps, total_steps, min_lr)
    raise ValueError(f"unknown schedule {name!r}; known schedules are {list(SCHEDULES)}")
