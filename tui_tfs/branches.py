"""Branching a training run: from a snapshot, train on with another learning rate, break-it
switch or seed, with the run it left kept beside it until one of the two is kept.

A mixin of `TrainingController` (tui_tfs/training.py): it reads and replaces the controller's
run (model, trainer, config, history, layer_norms, evaluations, markers, snapshots,
diverged_at, saved_step, file, checkpoint_path, label) under its lock, and makes markers with
its `Marker` class. Two runs at most: the live one, which the screen trains, and `other`, the
one a branch left, frozen at its latest step (a `Run`).

    controller.branch(snapshot, lr=1e-3)     # the live run goes into `other`; the branch
    controller.keep("live")                  # starts at the snapshot's step. keep("live")
    controller.keep("other")                 # drops `other`; keep("other") goes back to it

Determinism: the branch restores the snapshot exactly (weights, moments, step, generators,
the learning rate and switches in effect then), so a branch with no change retraces the run
it left bit for bit; a changed learning rate changes the first update after the snapshot (the
loss of that step is the same: it is measured before the update).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.maths.switches import SWITCHES, with_break
from engine.training.snapshots import Snapshot, Snapshots
from engine.training.trainer import Trainer

from .checkpoints import claim_new_file, file_mark

BRANCH_FIELDS = ("history", "layer_norms", "evaluations", "markers", "snapshots",
                 "diverged_at", "saved_step", "file", "checkpoint_path", "label", "config")


@dataclass
class Run:
    """A run set aside by a branch: everything needed to draw it and to go back to it."""

    label: str  # its name on the legend: "run", "lr 0.003 @300"
    end: Snapshot  # where it stands: weights, trainer state, model and train config
    history: list  # StepStats of every step
    layer_norms: dict = field(default_factory=dict)  # group -> gradient norm per step
    evaluations: list = field(default_factory=list)
    markers: list = field(default_factory=list)
    snapshots: Snapshots | None = None
    diverged_at: object = None
    saved_step: int = 0  # the step a checkpoint holds
    file: object = None  # the file that holds it, if one does (checkpoints.file_mark)
    checkpoint_path: object = None  # where it saves (its own file, or where w put it)
    config: object = None  # its TrainConfig
    parted_at: int = 0  # the step the branch left it at

    @property
    def step(self) -> int:
        return self.end.step

    @property
    def unsaved(self) -> bool:
        return self.step != self.saved_step


def branch_label(step: int, lr: float | None, switch: str | None, seed: int | None,
                 breaks) -> str:
    """What a branch changed, in a few words: "lr 0.003 @300", "seed 7 @120"."""
    changes = []
    if lr is not None:
        changes.append(f"lr {lr:.3g}")
    if switch is not None:
        changes.append(f"{switch} {'off' if getattr(breaks, switch) else 'on'}")
    if seed is not None:
        changes.append(f"seed {seed}")
    return f"{', '.join(changes) or 'same'} @{step}"


class Branching:
    """`branch` and `keep` for TrainingController; see the module docstring."""

    def branch(self, snapshot: Snapshot, lr: float | None = None, switch: str | None = None,
               seed: int | None = None) -> str:
        """Train on from `snapshot` with a new peak learning rate, one break-it switch flipped
        and/or a new seed for the batches; the run now live becomes `other`. Returns the
        branch's label. ValueError (in words) while training runs, when a branch is already
        beside the run (keep one first) or for a bad setting."""
        if switch is not None and switch not in SWITCHES:
            raise ValueError(f"no break-it switch {switch!r}; switches are {list(SWITCHES)}")
        with self.lock:
            if self.running:
                raise ValueError("pause first (space): a branch starts from a paused run")
            if self.other is not None:
                raise ValueError("two runs are already drawn: keep one first (K)")
            model = snapshot.model()
            label = branch_label(snapshot.step, lr, switch, seed, model.config.breaks)
            if switch is not None:
                model, _ = with_break(model, switch)
            trainer = Trainer(model, replace(snapshot.train_config), self._draw)
            trainer.load_state(snapshot.trainer_state)
            if lr is not None:
                trainer.set_lr(lr)  # ConfigError (a ValueError) names a bad one
            if seed is not None:
                trainer.reseed(seed)
            left = self._park(parted_at=snapshot.step)
            kept = [s for s in left.history if s.step <= snapshot.step]
            self.history = kept
            self.layer_norms = {g: norms[:len(kept)] for g, norms in left.layer_norms.items()}
            self.evaluations = [e for e in left.evaluations if e.step <= snapshot.step]
            self.markers = [m for m in left.markers if m.step <= snapshot.step]
            self.markers.append(self.Marker(snapshot.step + 1, "branch", label))
            self.snapshots = left.snapshots.copy_until(snapshot.step)
            at = left.diverged_at
            self.diverged_at = at if at is not None and at.step <= snapshot.step else None
            self.model, self.trainer, self.config = model, trainer, trainer.config
            self.file, self.saved_step = None, -1  # no file holds the branch (the run's own,
            # if it has one, holds the run the branch left)
            self.label, self.other = label, left
            self.state = "paused"
            self.notice = f"branch {label}: space trains it; K keeps one of the two runs"
        return label

    def keep(self, which: str) -> None:
        """Keep the "live" run (the other one is dropped) or the "other" one (the live run is
        dropped and the other one goes on from where it stood). The screen asks first."""
        if which not in ("live", "other"):
            raise ValueError(f"keep 'live' or 'other', got {which!r}")
        with self.lock:
            if self.running:
                raise ValueError("pause first (space)")
            other, self.other = self.other, None
            if other is None or which == "live":
                self.notice = f"kept {self.label}"
                return
            end = other.end
            model = end.model()
            trainer = Trainer(model, replace(other.config), self._draw)
            trainer.load_state(end.trainer_state)
            self.model, self.trainer = model, trainer
            for name in BRANCH_FIELDS:
                setattr(self, name, getattr(other, name))
            self.state = "paused"
            self.notice = f"kept {other.label}, at step {other.step}; space trains on"

    def save_other(self, path) -> Path:
        """Save the run a branch left, as it stands, in a new file at `path` or beside it
        (`claim_new_file`); returns where. The live run is untouched."""
        with self.lock:
            other = self.other
            saved = self.save_snapshot(other.end, claim_new_file(Path(path)))
            other.saved_step, other.file = other.step, file_mark(saved)
        return saved

    def _park(self, parted_at: int) -> Run:
        """The live run as a `Run` (its latest state snapshotted)."""
        end = Snapshots(1, 2**62).take(self.trainer, self.latest.loss if self.latest else None)
        return Run(end=end, parted_at=parted_at,
                   **{name: getattr(self, name) for name in BRANCH_FIELDS})
