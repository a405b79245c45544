"""The probe of an in-app training run, without Textual: what the scrubber, the heatmaps over
training time and the diff view read.

The probe runs at every snapshot the training controller keeps (tui_tfs/training.py: every
SNAPSHOT_EVERY steps and at a pause, within its memory budget): it runs the probe input through
the model as it stood then (engine.training.probe: the attention weights per layer and head, and
the probe's loss). The snapshots are the controller's own, so the weights are copied once per
run and the scrubber's steps are the timeline's. A watch started mid-run probes every snapshot
already kept, so it shows the run's whole history. It is called by the controller after each
step, with the controller's lock held, so no step runs while it probes.

    watch = watch_training(controller)          # the controller's watch, made on first use
    watch.frames[-1].attention["decoder.blocks.1.cross_attn"]     # (H, T, S)
    watch.set_probe("2718")                      # a typed probe: every kept snapshot re-probed
    steps, table = watch.entropy_over_time()     # (F,), (F, L, H)

A frame stays when its snapshot is thinned away (a frame is small), so the frames may be denser
in the distant past than the kept snapshots; a typed probe is re-run at the snapshots still
kept only.
"""
from __future__ import annotations

import numpy as np

from engine.training.probe import ProbeFrame, attention_entropy, probe_frame, probe_snapshots
from engine.training.snapshots import Snapshot, Snapshots
from engine.maths.facts import SOURCE


class ProbeWatch:
    """The probe input and its frames (one per probed step, oldest first), at the controller's
    snapshots."""

    def __init__(self, controller, text: str | None = None) -> None:
        self.controller = controller
        self.scenario = controller.scenario
        self.ascii = False  # labels in ASCII (the screen sets it from its style)
        self.frames: list[ProbeFrame] = []
        self.text = ""
        self.batch = None
        with controller.lock:
            self.set_probe(text if text is not None else self.scenario.examples[0], controller)
            if not self.frames:  # no snapshot kept (a model too large for the budget): now
                self.probe_now(controller)

    @property
    def snapshots(self) -> Snapshots:
        """The controller's snapshots (a branch replaces its store: read it each time)."""
        return self.controller.snapshots

    def __call__(self, controller, stats) -> None:
        """After each step: probe when the controller has just kept a snapshot of it."""
        kept = controller.snapshots.kept
        if kept and kept[-1].step == controller.step:
            self.probe_now(controller)

    def catch_up(self, controller) -> None:
        """Probe the kept snapshots newer than the latest frame (one taken at a pause, after the
        last step), dropping the frames past the newest snapshot (a rewound run's future)."""
        with controller.lock:
            kept = controller.snapshots.kept
            if not kept:
                return
            frames = [f for f in self.frames if f.step <= kept[-1].step]
            last = frames[-1].step if frames else -1
            newer = [(s.step, s.weights) for s in kept if s.step > last]
            self.frames = frames + probe_snapshots(controller.model, newer, self.batch)

    def probe_now(self, controller) -> ProbeFrame:
        """A probe frame of the live model at its step (a rewound run's later frames go)."""
        step = controller.step
        frame = probe_frame(controller.model, self.batch, step)
        self.frames = [f for f in self.frames if f.step < step] + [frame]
        return frame

    def set_probe(self, text: str, controller=None) -> None:
        """Probe `text` from now on; with `controller`, re-probe the kept snapshots with it.
        scenarios.ScenarioError (with the fix) if the scenario cannot encode it."""
        batch = self.scenario.batch_for(text)
        self.text, self.batch = text, batch
        if controller is not None and controller.snapshots.kept:
            with controller.lock:
                self.frames = probe_snapshots(controller.model,
                                              [(s.step, s.weights)
                                               for s in controller.snapshots.kept],
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
            watcher.catch_up(controller)
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
