"""The probe of an in-app training run, without Textual: what the scrubber, the heatmaps over
training time and the diff view read.

Every `every` steps (and at the step it starts from) the watch takes a snapshot of the run
(engine.training.snapshots: weights, optimizer state, step, generators, within a memory
budget) and runs the probe input through the live model (engine.training.probe: the attention
weights per layer and head, and the probe's loss). It is called by the training controller
after each step, with the controller's lock held, so no step runs while it probes.

    watch = watch_training(controller)          # the controller's watch, made on first use
    watch.frames[-1].attention["decoder.blocks.1.cross_attn"]     # (H, T, S)
    watch.set_probe("2718")                      # a typed probe: every kept snapshot re-probed
    steps, table = watch.entropy_over_time()     # (F,), (F, L, H)

A typed probe is re-run at the snapshots still kept (older ones are thinned to the budget), so
its frames may be sparser in the distant past than the first probe's.
"""
from __future__ import annotations

import numpy as np

from engine.training.probe import ProbeFrame, attention_entropy, probe_frame, probe_snapshots
from engine.training.snapshots import Snapshot, Snapshots
from engine.maths.facts import SOURCE

PROBE_EVERY = 25  # steps between two probes (and snapshots): 60 frames over reversal's 1500
SNAPSHOT_BUDGET = 32 * 2**20  # bytes the probe's snapshots may hold (weights + Adam moments)


class ProbeWatch:
    """The probe input, its frames (one per probed step, oldest first) and the snapshots."""

    def __init__(self, controller, text: str | None = None, every: int = PROBE_EVERY,
                 budget_bytes: int = SNAPSHOT_BUDGET) -> None:
        self.scenario = controller.scenario
        self.ascii = False  # labels in ASCII (the screen sets it from its style)
        self.snapshots = Snapshots(every, budget_bytes)
        self.frames: list[ProbeFrame] = []
        self.text = ""
        self.batch = None
        with controller.lock:
            self.set_probe(text if text is not None else self.scenario.examples[0], controller)
            self.take(controller)

    @property
    def every(self) -> int:
        return self.snapshots.every

    def __call__(self, controller, stats) -> None:
        """After each step: probe at every `every`th."""
        if controller.step % self.every == 0:
            self.take(controller, stats.loss)

    def take(self, controller, loss: float | None = None) -> ProbeFrame:
        """A snapshot and a probe frame of the run now (a rewound run's later frames go);
        `loss`: the training loss of the step that led here."""
        step = controller.step
        self.snapshots.take(controller.trainer, loss)
        frame = probe_frame(controller.model, self.batch, step)
        self.frames = [f for f in self.frames if f.step < step] + [frame]
        return frame

    def set_probe(self, text: str, controller=None) -> None:
        """Probe `text` from now on; with `controller`, re-probe the kept snapshots with it.
        scenarios.ScenarioError (with the fix) if the scenario cannot encode it."""
        batch = self.scenario.batch_for(text)
        self.text, self.batch = text, batch
        if controller is not None and self.snapshots.kept:
            with controller.lock:
                self.frames = probe_snapshots(controller.model,
                                              [(s.step, s.weights) for s in self.snapshots.kept],
                                              batch)

    # -- what the views read ----------------------------------------------------------------------
    def tokens(self, stream: str | None) -> list[str]:
        """The probe's tokens along `stream` (SOURCE: the encoder's input, else the decoder's)."""
        ids = self.batch.src[0] if stream == SOURCE and self.batch.src is not None \
            else self.batch.tgt_in[0]
        tok = self.scenario.tokenizer
        return [tok.label(int(i), ascii_only=self.ascii) for i in ids]

    def labels(self, frame: ProbeFrame, layer: str) -> tuple[list[str], list[str]]:
        """(query tokens down, key tokens across) of `layer`'s map."""
        rows, keys = frame.streams[layer]
        return self.tokens(rows), self.tokens(keys)

    def entropy_over_time(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps (F,), entropy (F, L, H)) of the frames so far (F >= 1)."""
        frames = list(self.frames)  # the worker may append meanwhile
        return (np.array([f.step for f in frames]),
                np.stack([attention_entropy(f) for f in frames]))

    def snapshot_at(self, step: int) -> Snapshot | None:
        for snapshot in self.snapshots.kept:
            if snapshot.step == step:
                return snapshot
        return None


def watch_training(controller, text: str | None = None) -> ProbeWatch:
    """The controller's probe watch, started (and hooked into its steps) on first use."""
    for watcher in controller.step_watchers:
        if isinstance(watcher, ProbeWatch):
            return watcher
    watch = ProbeWatch(controller, text)
    controller.step_watchers.append(watch)
    return watch


def grad_norms_over_time(controller) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(groups, steps (N,), norms (G, N)): the per-layer gradient norms the trainer computed
    at every step of the run (before clipping), in the model's group order."""
    history = list(controller.history)
    groups = list(history[0].layer_grad_norms) if history else []
    steps = np.array([s.step for s in history], dtype=np.int64)
    norms = np.array([[s.layer_grad_norms.get(g, np.nan) for s in history] for g in groups],
                     dtype=np.float64).reshape(len(groups), len(history))
    return groups, steps, norms
