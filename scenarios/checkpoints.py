"""A scenario's checkpoints: saving a trained model with what rebuilds its scenario, and
reopening one to evaluate, generate, explore or train on.

A checkpoint is the engine's safetensors file (weights, model config, the trainer's state)
plus the scenario's metadata: its source (built-in name or file path), tokenizer, layout,
example inputs, a digest of its data split and the latest held-out metrics. Everything it
carries is checked before it is used; a problem is one CheckpointError or ScenarioError naming
the file and the fix.

    save(scenario, trainer, Path("checkpoints/reverse.safetensors"), metrics)
    trained = open_checkpoint(path)          # model + tokenizer: enough for eval and generate
    scenario = scenario_of(trained)          # the scenario rebuilt, checked against the file
    reopened = reopen_checkpoint(path)       # scenario, model and trainer state: to train on
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from engine.training.checkpoint import (Checkpoint, CheckpointError, load_checkpoint, model_from_checkpoint,
                               save_checkpoint)
from engine.training.trainer import Trainer
from engine.training.train_config import train_config_from_dict

from . import load_scenario
from .base import META_DATA, META_LAYOUT, META_SOURCE, META_TOKENIZER, META_TRAIN, Scenario
from .limits import memory_limit
from .overrides import ScenarioError
from .tokenizers import tokenizer_from_dict

META_EXAMPLES = "scenario.examples"  # JSON list: default prompts for `generate`
META_METRICS = "scenario.metrics"  # JSON {name: value}: the held-out metrics at save time


def save(scenario: Scenario, trainer: Trainer, path: Path,
         metrics: dict[str, float] | None = None) -> Path:
    """Checkpoint the model, the trainer's state and the scenario's metadata (atomically);
    `metrics`, the latest held-out evaluation, is stored for the picker to show."""
    metadata = scenario.checkpoint_metadata()
    metadata[META_EXAMPLES] = json.dumps(list(scenario.examples))
    if metrics:
        metadata[META_METRICS] = json.dumps({k: float(v) for k, v in metrics.items()})
    return save_checkpoint(path, trainer.model, extra_metadata=metadata,
                           optimizer_state=trainer.state(), step=trainer.step_count)


# -- reopening a checkpoint ------------------------------------------------------------------------
@dataclass
class Trained:
    """A checkpoint reopened: the model and what is needed to talk to it."""

    path: Path  # the checkpoint file
    model: object  # the engine model, weights loaded, in eval mode
    tokenizer: object  # scenarios.Tokenizer the model was trained with
    layout: str  # "pairs" | "prompted" | "stream"
    source: str  # scenario built-in name or file path
    examples: list[str]  # the scenario's example inputs
    step: int | None  # training step it was saved at
    nonfinite: list[str] = dataclasses.field(default_factory=list)  # weights holding NaN/Inf
    #                                       (only with open_checkpoint(allow_nonfinite=True))
    data_digest: str | None = None  # sha256 of the splits it was trained on (older files: None)


def open_checkpoint(path: str | Path, allow_nonfinite: bool = False) -> Trained:
    """Model and tokenizer from a checkpoint written by `tui-tfs train`.

    allow_nonfinite=True opens weights that hold NaN/Inf (for the explorer, where a user goes
    to find where a NaN starts; `Trained.nonfinite` names them) instead of refusing them.
    """
    path = Path(path)
    if not path.exists():  # said here, in the command's words: the engine's names a function
        raise CheckpointError(f"{path}: no such file; check the path, or make one with: "
                              f"tui-tfs train SCENARIO --out {path}")
    checkpoint = load_checkpoint(path, allow_nonfinite, memory_limit())  # CheckpointError: why
    tokenizer, layout, examples = check_scenario_metadata(path, checkpoint)
    model = model_from_checkpoint(checkpoint, path)
    model.eval()
    return Trained(path, model, tokenizer, layout, checkpoint.metadata.get(META_SOURCE, "?"),
                   examples, checkpoint.step, checkpoint.nonfinite,
                   checkpoint.metadata.get(META_DATA))


LAYOUT_KINDS = {"pairs": "encoder_decoder", "prompted": "decoder_only", "stream": "decoder_only"}


def check_scenario_metadata(path: Path, checkpoint: Checkpoint):
    """(tokenizer, layout, examples) from a checkpoint's scenario metadata, checked against its
    model: a layout the model kind can run, a vocabulary of the model's size."""
    meta = checkpoint.metadata
    if META_TOKENIZER not in meta or META_LAYOUT not in meta:
        raise CheckpointError(f"{path}: has no scenario metadata (tokenizer, layout); it was not "
                              f"written by `tui-tfs train`, so its token ids cannot be read")
    layout = meta[META_LAYOUT]
    if LAYOUT_KINDS.get(layout) != checkpoint.config.kind:
        raise CheckpointError(f"{path}: its layout {layout[:40]!r} does not fit its "
                              f"{checkpoint.config.kind} model (expected one of "
                              f"{[k for k, v in LAYOUT_KINDS.items() if v == checkpoint.config.kind]}); "
                              f"the file is damaged (train it again)")
    try:
        data = json.loads(meta[META_TOKENIZER])
        if not isinstance(data, dict):
            raise TypeError(f"the tokenizer must be a JSON object, not {type(data).__name__}")
        tokenizer = tokenizer_from_dict(data)
        examples = json.loads(meta.get(META_EXAMPLES, "[]"))
        if not isinstance(examples, list):
            raise TypeError(f"the examples must be a JSON list, not {type(examples).__name__}")
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        raise CheckpointError(f"{path}: its scenario metadata is damaged: "
                              f"{str(error)[:120]}; train it again") from None
    if tokenizer.vocab_size != checkpoint.config.vocab_size:
        raise CheckpointError(f"{path}: its tokenizer has {tokenizer.vocab_size} tokens but its "
                              f"model {checkpoint.config.vocab_size}; the file is damaged")
    return tokenizer, layout, [e for e in examples if isinstance(e, str)]


@dataclass
class Reopened:
    """A checkpoint reopened to explore and to train on from where it stopped."""

    path: Path  # the checkpoint file
    scenario: Scenario  # rebuilt from its source, with the run's own training settings
    model: object  # the engine model, weights loaded
    trainer_state: dict | None  # Trainer.state() as saved: step, optimizer moments, generators
    step: int | None  # training step it was saved at
    warning: str | None  # what is wrong with it but does not stop exploring (NaN/Inf weights)


def reopen_checkpoint(path: str | Path) -> Reopened:
    """Scenario, model and training state of a checkpoint written by `tui-tfs train` or the
    training screen's w, checked like `--resume` checks it; weights that are not finite
    open with a warning rather than an error (the explorer is where to look at them)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file; check the path, or make one with: "
                              f"tui-tfs train SCENARIO --out {path}")
    checkpoint = load_checkpoint(path, allow_nonfinite=True, memory_limit=memory_limit())
    tokenizer, layout, examples = check_scenario_metadata(path, checkpoint)
    meta = checkpoint.metadata
    if META_SOURCE not in meta:
        raise CheckpointError(f"{path}: has no scenario source; it was not written by "
                              f"`tui-tfs train` or the training screen, so it cannot be explored")
    model = model_from_checkpoint(checkpoint, path)
    scenario = scenario_of(Trained(path, model, tokenizer, layout, meta[META_SOURCE], examples,
                                   checkpoint.step, checkpoint.nonfinite, meta.get(META_DATA)))
    if META_TRAIN in meta:  # the run's own settings (steps, schedule), as --resume uses them
        try:
            scenario.train_config = train_config_from_dict(json.loads(meta[META_TRAIN]))
        except (ValueError, TypeError) as error:
            raise ScenarioError(f"{path}: its stored training settings are unusable: {error}; "
                           f"retrain it with tui-tfs train") from None
    scenario.model_config = checkpoint.config
    bad = checkpoint.nonfinite
    warning = None
    if bad:
        warning = (f"{path}: {len(bad)} of {len(checkpoint.state_dict)} weight tensors hold "
                   f"NaN or Inf ({', '.join(bad[:2])}{', ...' if len(bad) > 2 else ''}); the "
                   f"trace shows where they spread (x runs to the first). Train from an "
                   f"earlier checkpoint instead")
    return Reopened(path, scenario, model, checkpoint.optimizer_state, checkpoint.step, warning)


def scenario_of(trained: Trained) -> Scenario:
    """Rebuild the scenario a checkpoint was trained on, checking its tokenizer still matches."""
    try:
        scenario = load_scenario(trained.source)
    except ScenarioError as error:
        raise ScenarioError(f"{trained.path} was trained on {trained.source!r}, which cannot be "
                       f"loaded now: {error}") from None
    if scenario.tokenizer.vocab != trained.tokenizer.vocab:
        raise ScenarioError(f"{trained.path}: the scenario {trained.source!r} now has a different "
                       f"vocabulary than when this model was trained (its data changed); "
                       f"retrain it, or restore the old data")
    if trained.data_digest is not None and trained.data_digest != scenario.data_digest():
        # same vocabulary, other split (a pairs file with lines added): held-out numbers would
        # count examples the model was trained on
        raise ScenarioError(f"{trained.path}: the data of {trained.source!r} changed since this model "
                       f"was trained, so its held-out split is not the one it was measured on; "
                       f"retrain it, or restore the old data")
    return scenario
