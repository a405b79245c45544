"""Snapshots of a training run every N steps, within a memory budget, to rewind to.

A snapshot is everything a `Trainer` needs to go on from a step exactly as it did the first
time: the weights, and `Trainer.state()` (the step count, the optimizer's moments, the batch
generator and the dropout generators), with the model's config (break-it switches included)
and the loss of the step that led to it. Restoring one and training the same steps again gives
the same losses, bit for bit.

    snapshots = Snapshots(every=50, budget_bytes=64 * 2**20)
    snapshots.take(trainer)                   # step 0: the initial weights
    for _ in range(steps):
        stats = trainer.step()
        snapshots.maybe_take(trainer, stats.loss)  # a snapshot at every 50th step
    snapshots.restore(snapshots.at(100), trainer)

Reading them (any thread): `snapshots.kept` is the list of snapshots, oldest first, each with
`.step`, `.loss` (None at step 0), `.weights` ((P,) packed, read-only) and `.model()` (a fresh
model holding those weights, to trace or explore). The list is never changed in place: taking or
thinning puts a new list in `kept`, so a reader that reads `kept` once holds a consistent list
while training goes on.

Within the budget: snapshots are taken at multiples of `spacing` (at first `every`). When the
snapshots' bytes pass the budget, the spacing doubles and the snapshots off the new grid go,
so what is kept is always spread evenly over the whole run (steps 0, 40, 80, ... rather than
only the latest ones). Step 0 and the latest snapshot are always kept. Which ones go follows
from the steps alone, never from chance.

Shapes: P total number of parameter elements; the weights and the moments are (P,) each.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ..maths.models import build_model


@dataclass(frozen=True)
class Snapshot:
    """A run as it was after `step` steps."""

    step: int  # steps taken when it was taken (0: before training)
    weights: np.ndarray  # (P,) a read-only copy of model.packed.data
    trainer_state: dict[str, np.ndarray]  # Trainer.state(): moments, step count, generators
    model_config: object = None  # the model's ModelConfig then (break-it switches included)
    loss: float | None = None  # the training loss of step `step` (None: not known, or step 0)

    @property
    def nbytes(self) -> int:
        return int(self.weights.nbytes + sum(a.nbytes for a in self.trainer_state.values()))

    def model(self):
        """A new model with this snapshot's config and weights (the live run is untouched)."""
        if self.model_config is None:
            raise ValueError(f"the snapshot of step {self.step} has no model config to build from")
        model = build_model(copy.deepcopy(self.model_config))
        model.packed.data[...] = self.weights
        return model


class Snapshots:
    """The snapshots of one run, oldest first; see the module docstring."""

    def __init__(self, every: int, budget_bytes: int) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"snapshot interval 'every' must be a whole number of steps >= 1, "
                             f"got {every!r}")
        if isinstance(budget_bytes, bool) or not isinstance(budget_bytes, int) or budget_bytes < 1:
            raise ValueError(f"snapshot budget_bytes must be a whole number of bytes >= 1, "
                             f"got {budget_bytes!r}")
        self.every = every  # steps between two snapshots, as asked
        self.spacing = every  # steps between two snapshots now: `every` doubled per thinning
        self.budget_bytes = budget_bytes  # the most all snapshots together may hold
        self.kept: list[Snapshot] = []  # oldest first, steps strictly increasing; replaced whole

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

    def nearest(self, step: int) -> Snapshot | None:
        """The kept snapshot closest to `step` (the earlier on a tie); None when none is kept."""
        kept = self.kept
        if not kept:
            return None
        return min(kept, key=lambda s: (abs(s.step - step), s.step))

    def maybe_take(self, trainer, loss: float | None = None) -> Snapshot | None:
        """Take a snapshot when the trainer's step count is a multiple of `spacing`."""
        if trainer.step_count % self.spacing:
            return None
        return self.take(trainer, loss)

    def take(self, trainer, loss: float | None = None) -> Snapshot:
        """A snapshot of `trainer` now (replacing one of the same step and any later one: a
        rewound run's future is retrained), then thinned to the budget. ValueError if one
        snapshot alone is larger than the budget."""
        weights = trainer.model.packed.data.copy()
        weights.flags.writeable = False  # shared by every reader: nobody may change it
        snapshot = Snapshot(trainer.step_count, weights, trainer.state(),  # fresh copies
                            copy.deepcopy(trainer.model.config),
                            None if loss is None else float(loss))
        if snapshot.nbytes > self.budget_bytes:
            raise ValueError(f"one snapshot needs {snapshot.nbytes:,} bytes, more than the "
                             f"budget of {self.budget_bytes:,}; raise budget_bytes")
        kept = [s for s in self.kept if s.step < snapshot.step] + [snapshot]
        while sum(s.nbytes for s in kept) > self.budget_bytes:
            kept = self._thinned(kept)
        self.kept = kept  # one assignment: readers see the old list or the new one
        return snapshot

    def _thinned(self, kept: list[Snapshot]) -> list[Snapshot]:
        """Double the spacing and keep the snapshots on the new grid, the first and the latest."""
        if len(kept) <= 2:  # the latest alone fits (take checked it)
            return kept[-1:]
        self.spacing *= 2
        last = len(kept) - 1
        return [s for i, s in enumerate(kept) if i in (0, last) or s.step % self.spacing == 0]

    def copy_until(self, step: int) -> Snapshots:
        """A new store holding the snapshots up to `step` (shared, they never change), with
        this one's settings: a branch from `step` goes on in it, this run keeps its own."""
        other = Snapshots(self.every, self.budget_bytes)
        other.spacing = self.spacing
        other.kept = [s for s in self.kept if s.step <= step]
        return other

    def restore(self, snapshot: Snapshot, trainer) -> None:
        """Put `trainer` (and its model) back to `snapshot`: training on from here retraces
        the steps that followed it, bit for bit. The model must have the snapshot's shapes
        (`snapshot.model()` builds one when its switches differ)."""
        trainer.load_state(snapshot.trainer_state)  # forgets the later run's last good weights
        trainer.model.packed.data[...] = snapshot.weights
