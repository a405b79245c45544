"""Snapshots of a training run every N steps, within a memory budget, to rewind to.

A snapshot is everything a `Trainer` needs to go on from a step exactly as it did the first
time: the weights, and `Trainer.state()` (the step count, the optimizer's moments, the batch
generator and the dropout generators). Restoring one and training the same steps again gives
the same losses, bit for bit.

    snapshots = Snapshots(every=50, budget_bytes=64 * 2**20)
    for _ in range(steps):
        trainer.step()
        snapshots.maybe_take(trainer)        # a snapshot at every 50th step
    snapshots.restore(snapshots.at(100), trainer)

Within the budget: when the snapshots' bytes pass it, the oldest ones are thinned, one at a
time, so the spacing between kept snapshots grows with their age (recent training is kept
densely, the distant past sparsely). The first snapshot and the latest are always kept. Which
one goes is decided by a rule, never at random: the one whose removal opens the smallest gap
relative to its age, (step after - step before) / (latest step - its step), the older on a tie.

Shapes: P total number of parameter elements; the weights and the moments are (P,) each.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Snapshot:
    """A run as it was after `step` steps."""

    step: int  # steps taken when it was taken (0: before training)
    weights: np.ndarray  # (P,) a copy of model.packed.data
    trainer_state: dict[str, np.ndarray]  # Trainer.state(): moments, step count, generators

    @property
    def nbytes(self) -> int:
        return int(self.weights.nbytes + sum(a.nbytes for a in self.trainer_state.values()))


class Snapshots:
    """The snapshots of one run, oldest first; see the module docstring."""

    def __init__(self, every: int, budget_bytes: int) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"snapshot interval 'every' must be a whole number of steps >= 1, "
                             f"got {every!r}")
        if isinstance(budget_bytes, bool) or not isinstance(budget_bytes, int) or budget_bytes < 1:
            raise ValueError(f"snapshot budget_bytes must be a whole number of bytes >= 1, "
                             f"got {budget_bytes!r}")
        self.every = every  # steps between two snapshots
        self.budget_bytes = budget_bytes  # the most all snapshots together may hold
        self.kept: list[Snapshot] = []  # oldest first, steps strictly increasing

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.kept)

    @property
    def steps(self) -> list[int]:
        return [s.step for s in self.kept]

    def at(self, step: int) -> Snapshot:
        """The snapshot taken at `step`; KeyError naming the steps kept if there is none."""
        for snapshot in self.kept:
            if snapshot.step == step:
                return snapshot
        raise KeyError(f"no snapshot at step {step}; snapshots are kept at steps {self.steps}")

    def maybe_take(self, trainer) -> Snapshot | None:
        """Take a snapshot when the trainer's step count is a multiple of `every`."""
        if trainer.step_count % self.every:
            return None
        return self.take(trainer)

    def take(self, trainer) -> Snapshot:
        """A snapshot of `trainer` now (replacing one of the same step), then thin to budget.
        ValueError if one snapshot alone is larger than the budget."""
        snapshot = Snapshot(trainer.step_count, trainer.model.packed.data.copy(),
                            trainer.state())  # state() hands out fresh copies
        if snapshot.nbytes > self.budget_bytes:
            raise ValueError(f"one snapshot needs {snapshot.nbytes:,} bytes, more than the "
                             f"budget of {self.budget_bytes:,}; raise budget_bytes")
        self.kept = [s for s in self.kept if s.step < snapshot.step]  # a rewound run's future
        self.kept.append(snapshot)  # goes: what follows the snapshot is retrained
        while self.nbytes > self.budget_bytes:
            self._thin()
        return snapshot

    def _thin(self) -> None:
        """Drop the snapshot whose removal opens the smallest gap for its age (docstring)."""
        steps = self.steps
        if len(steps) <= 2:  # the first and the latest are kept; one snapshot fits (take)
            del self.kept[0]
            return
        latest = steps[-1]
        scores = [((steps[i + 1] - steps[i - 1]) / (latest - steps[i]), i)
                  for i in range(1, len(steps) - 1)]
        del self.kept[min(scores)[1]]

    def restore(self, snapshot: Snapshot, trainer) -> None:
        """Put `trainer` (and its model) back to `snapshot`: training on from here retraces
        the steps that followed it, bit for bit."""
        trainer.load_state(snapshot.trainer_state)
        trainer.model.packed.data[...] = snapshot.weights
