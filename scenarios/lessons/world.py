"""The model a lesson step stands on: a scenario or checkpoint, its break-it switches, and the
training it has had ("train to step N"), built once and kept while a lesson is walked.

    worlds = Worlds()
    world = worlds.get(ModelKey("scenario", "reverse", ("no_scaling",), train=300))
    trace = world.trace(("31415", "27"))  # one forward + backward, labelled with tokens

Training in place is deterministic: the scenario's seed, its training settings with the run
cut to N steps (so the learning-rate schedule ends at N), the same N giving the same weights.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.maths.batch import Batch
from engine.maths.loss import CrossEntropyLoss
from engine.maths.switches import SWITCHES, with_break
from engine.trace.trace import Trace, record_step

KEEP_WORLDS = 6  # models kept at once (a few MB each for the built-in scenarios)


@dataclass(frozen=True)
class ModelKey:
    """Which model: from a built-in scenario, a scenario file or a checkpoint (`source` is a
    built-in name or an absolute path), with these switches on, trained this many steps."""

    kind: str  # "scenario" | "checkpoint"
    source: str
    breaks: tuple[str, ...] = ()
    train: int = 0


class World:
    """One built model with its scenario and loss; traces inputs on it."""

    def __init__(self, key: ModelKey, scenario, model) -> None:
        self.key = key
        self.scenario = scenario
        self.model = model
        self.loss_fn = CrossEntropyLoss(scenario.model_config.pad_id,
                                        scenario.train_config.label_smoothing)
        self._traces: dict[str, Trace] = {}

    def trace(self, texts: tuple[str, ...]) -> Trace:
        """Trace `texts` as the explorer's input box does, one batch item each, shorter ones
        padded with <pad> (ScenarioError if one cannot be encoded)."""
        if texts not in self._traces:
            batch = self.batch_of(texts)
            tok = self.scenario.tokenizer

            def labels(ids):
                return [[tok.label(int(i)) for i in row] for row in ids]

            src = None if batch.src is None else labels(batch.src)
            self._traces[texts] = record_step(self.model, self.loss_fn, batch, src,
                                             labels(batch.tgt_in), labels(batch.tgt_out))
        return self._traces[texts]

    def batch_of(self, texts: tuple[str, ...]) -> Batch:
        rows = [self.scenario.batch_for(text) for text in texts]
        pad = self.scenario.tokenizer.pad_id
        src = None if rows[0].src is None else _stack([r.src[0] for r in rows], pad)
        return Batch(src, _stack([r.tgt_in[0] for r in rows], pad),
                     _stack([r.tgt_out[0] for r in rows], pad))


class Worlds:
    """A small cache of worlds by ModelKey, so steps on the same model share it."""

    def __init__(self, progress: Callable[[int, int], None] | None = None) -> None:
        self.progress = progress  # (step, of N) while a model trains in place
        self._worlds: OrderedDict[ModelKey, World] = OrderedDict()

    def __len__(self) -> int:
        """How many models are built (a build stopped part-way counts for nothing)."""
        return len(self._worlds)

    def get(self, key: ModelKey) -> World:
        """The world of `key`; raises ScenarioError or CheckpointError naming the fix."""
        if key in self._worlds:
            self._worlds.move_to_end(key)
            return self._worlds[key]
        world = self._build(key)
        self._worlds[key] = world
        while len(self._worlds) > KEEP_WORLDS:
            self._worlds.popitem(last=False)
        return world

    def _build(self, key: ModelKey) -> World:
        if key.kind == "checkpoint":
            from scenarios.checkpoints import reopen_checkpoint

            reopened = reopen_checkpoint(key.source)
            scenario, model = reopened.scenario, reopened.model
        else:
            from scenarios import load_scenario

            scenario = load_scenario(key.source)
            model = scenario.build_model()
        model = with_breaks(model, key.breaks)
        if key.train:
            train_in_place(scenario, model, key.train, self.progress)
        model.eval()
        return World(key, scenario, model)


def with_breaks(model, names: tuple[str, ...]):
    """`model` with exactly the switches `names` on (the same weights): each switch that
    differs flipped by the engine's one rebuild, `with_break`."""
    for name in SWITCHES:
        if getattr(model.config.breaks, name) != (name in names):
            model, _ = with_break(model, name)
    return model


def train_in_place(scenario, model, steps: int,
                   progress: Callable[[int, int], None] | None = None) -> float:
    """Train `model` `steps` steps with the scenario's settings, the run cut to `steps`;
    returns the last step's loss."""
    from engine.training.trainer import Trainer

    config = dataclasses.replace(scenario.train_config, steps=steps, eval_every=0)
    trainer = Trainer(model, config, scenario.next_batch)
    loss = float("nan")
    for step in range(1, steps + 1):
        loss = trainer.step().loss
        if progress is not None:
            progress(step, steps)
    return loss


def _stack(rows: list[np.ndarray], pad: int) -> np.ndarray:
    """(B, L) of 1-D rows, each padded on the right to the longest L."""
    out = np.full((len(rows), max(len(r) for r in rows)), pad, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out
