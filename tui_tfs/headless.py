"""Headless training: the `tui-tfs train` loop, its checkpoints, and reopening them.

A run trains a scenario's model with the engine's `Trainer`, shows a Rich progress bar, looks
at the held-out split every `eval_every` steps and saves a checkpoint every `checkpoint_every`
steps and at the end. A checkpoint is the engine's safetensors file: the weights, the model
config, the trainer's state (optimizer moments, step, random generators) so a run resumes
bit for bit, and the scenario's metadata (its source, tokenizer, layout) so `generate` and
`eval` can rebuild everything from the file alone.

Ctrl-C: the first press asks the loop to stop after the current step; the run then saves a
checkpoint (written atomically by the engine: a temporary file renamed into place) and exits
130. A second press stops at once, keeping the last complete checkpoint as it is.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from engine.checkpoint import Checkpoint, CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint
from engine.train import StepStats, Trainer, train_config_from_dict
from scenarios import Scenario, ScenarioError, load_scenario, tokenizer_from_dict
from scenarios.base import META_LAYOUT, META_SOURCE, META_TOKENIZER, META_TRAIN

from .checkpoints import META_METRICS  # held-out metrics at save time, for the picker

META_EXAMPLES = "scenario.examples"  # JSON list: default prompts for `generate`


class RunError(ValueError):
    """A run that cannot start or a checkpoint that cannot be used; the message says why."""


@dataclass
class RunOptions:
    """What `tui-tfs train` was asked to do."""

    out: Path  # checkpoint file to write (and to resume from)
    steps: int | None = None  # total steps of the run; None = the scenario's default
    seed: int | None = None  # seeds model init and batches; None = 0 (or the checkpoint's)
    resume: bool = False  # continue from `out` instead of starting fresh
    eval_every: int | None = None  # held-out evaluation period; None = a tenth of the run
    checkpoint_every: int | None = None  # checkpoint period; None = eval_every
    log: Path | None = None  # optional CSV of every step's numbers
    shards: int | None = None  # batch shards run side by side; None = the scenario's (or run's)


@dataclass
class RunResult:
    """How a run ended."""

    steps_done: int  # the trainer's step count at the end
    interrupted: bool  # stopped by Ctrl-C
    checkpoint: Path | None  # the last complete checkpoint written (None if none yet)
    metrics: dict[str, float]  # the last held-out evaluation
    losses: list[float]  # training loss of every step this run took
    seconds: float  # wall time of the loop


def prepare(source: str, options: RunOptions) -> tuple[Scenario, Trainer, list[str]]:
    """Scenario, model, trainer and notes on adjusted settings for a run, resumed from
    `options.out` if asked.

    Everything is checked before training starts: a bad scenario or an incompatible
    checkpoint is a RunError / ScenarioError with the fix, never a half-built run.
    """
    scenario = load_scenario(source)
    notes: list[str] = []
    previous = _previous_checkpoint(scenario, options) if options.resume else None
    # Seeds: --seed sets both (model init, batch order); without it a fresh run keeps the
    # scenario's own and a resumed run its checkpoint's (the batch generator's state is restored
    # from the checkpoint, so only the model's seed has to match).
    seed = options.seed
    if seed is not None and seed < 0:
        raise RunError(f"--seed must be 0 or more, got {seed}")
    model_seed = seed if seed is not None else (previous.config.seed if previous else None)
    if model_seed is not None:
        scenario.model_config = dataclasses.replace(scenario.model_config, seed=model_seed)
    if previous is not None and META_TRAIN in previous.metadata:
        # resume with the run's own training settings (steps, schedule), not today's defaults
        try:
            scenario.train_config = train_config_from_dict(json.loads(previous.metadata[META_TRAIN]))
        except (ValueError, TypeError) as error:
            raise RunError(f"{options.out}: its stored training settings are unusable: {error}") from None
    changes: dict[str, int] = {} if seed is None else {"seed": seed}
    if options.steps is not None:
        changes["steps"] = options.steps
        if scenario.train_config.warmup_steps >= options.steps:
            # a short trial run: keep the warmup's share of the run instead of refusing it
            changes["warmup_steps"] = options.steps // 10
            notes.append(f"warmup shortened to {changes['warmup_steps']} steps to fit --steps {options.steps}")
    if options.shards is not None:
        changes["shards"] = options.shards
    scenario.train_config = dataclasses.replace(scenario.train_config, **changes)
    try:
        scenario.train_config.validate()
    except ValueError as error:
        raise RunError(f"training settings: {error}") from None

    if previous is not None:
        ours, theirs = scenario.model_config.to_dict(), previous.config.to_dict()
        different = sorted(k for k in ours if ours[k] != theirs.get(k))
        if different:
            raise RunError(f"{options.out}: its model differs from this scenario's in {different}; "
                           f"resume with the same scenario and --seed, or train to a new --out")
        model = model_from_checkpoint(previous, options.out)
    else:
        model = scenario.build_model()
    trainer = Trainer(model, scenario.train_config, scenario.next_batch)
    if previous is not None:
        if not previous.optimizer_state:
            raise RunError(f"{options.out} holds weights but no training state; it cannot be resumed")
        try:
            trainer.load_state(previous.optimizer_state)
        except ValueError as error:
            raise RunError(f"{options.out}: cannot resume: {error}") from None
    return scenario, trainer, notes


def _previous_checkpoint(scenario: Scenario, options: RunOptions) -> Checkpoint:
    if not options.out.exists():
        raise RunError(f"--resume: there is no checkpoint at {options.out} yet; train without "
                       f"--resume first, or give its path with --out")
    previous = load_checkpoint(options.out)
    trained_on = previous.metadata.get(META_SOURCE)
    if trained_on != scenario.source:
        raise RunError(f"{options.out} was trained on {trained_on!r}, not {scenario.source!r}; "
                       f"resume it with that scenario or train to a new --out")
    return previous


def run(scenario: Scenario, trainer: Trainer, options: RunOptions, console: Console) -> RunResult:
    """Train to the configured total steps with a progress bar; see the module docstring."""
    total = scenario.train_config.steps
    done_before = trainer.step_count
    eval_every = options.eval_every or max(1, total // 10)
    checkpoint_every = options.checkpoint_every or eval_every
    metric = scenario.primary_metric
    result = RunResult(done_before, False, options.out if options.resume else None, {}, [], 0.0)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    log = _open_log(options.log, options.resume)

    stop = _StopFlag()
    start = time.perf_counter()
    tokens = 0
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(bar_width=12), MofNCompleteColumn(),
        TextColumn("loss [cyan]{task.fields[loss]}"), TextColumn("{task.fields[held]}"),
        TextColumn("{task.fields[speed]} tok/s"), TextColumn("ETA"), TimeRemainingColumn(),
        console=console)
    with stop.installed(), progress:
        bar = progress.add_task(scenario.name, total=total, completed=done_before,
                                loss="-", held=f"{_metric_name(metric)} -", speed="-")
        try:
            while trainer.step_count < total and not stop.requested:
                stats = trainer.step()
                result.losses.append(stats.loss)
                tokens += stats.tokens
                elapsed = time.perf_counter() - start
                progress.update(bar, completed=stats.step, loss=f"{stats.loss:.4f}",
                                speed=f"{tokens / elapsed:,.0f}")
                finished = stats.step == total
                if stats.step % eval_every == 0 or finished:
                    result.metrics = scenario.evaluate(trainer.model)
                    held = _format_metric(metric, result.metrics[metric])
                    progress.update(bar, held=f"{_metric_name(metric)} {held}")
                    progress.console.print(_eval_line(stats, result.metrics, scenario))
                if log is not None:
                    _write_log(log, stats, result.metrics.get(metric) if stats.step % eval_every == 0 else None)
                if stats.step % checkpoint_every == 0 or finished:
                    result.checkpoint = save(scenario, trainer, options.out, result.metrics)
            if stop.requested and trainer.step_count > 0:
                # stopped between steps: the state is whole, so this save loses nothing
                result.checkpoint = save(scenario, trainer, options.out, result.metrics)
                result.interrupted = True
        except KeyboardInterrupt:  # the second Ctrl-C: stop now, keep the last checkpoint
            result.interrupted = True
        finally:
            if log is not None:
                log.close()
    result.steps_done = trainer.step_count
    result.seconds = time.perf_counter() - start
    return result


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


def open_checkpoint(path: str | Path) -> Trained:
    """Model and tokenizer from a checkpoint written by `tui-tfs train`."""
    path = Path(path)
    if not path.exists():  # said here, in the command's words: the engine's names a function
        raise CheckpointError(f"{path}: no such file; check the path, or make one with: "
                              f"tui-tfs train SCENARIO --out {path}")
    checkpoint = load_checkpoint(path)  # CheckpointError names the file and the problem
    meta = checkpoint.metadata
    if META_TOKENIZER not in meta or META_LAYOUT not in meta:
        raise CheckpointError(f"{path}: has no scenario metadata (tokenizer, layout); it was not "
                              f"written by `tui-tfs train`, so its token ids cannot be read")
    try:
        tokenizer = tokenizer_from_dict(json.loads(meta[META_TOKENIZER]))
        examples = json.loads(meta.get(META_EXAMPLES, "[]"))
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: its scenario metadata is damaged: {error}") from None
    model = model_from_checkpoint(checkpoint, path)
    model.eval()
    return Trained(path, model, tokenizer, meta[META_LAYOUT], meta.get(META_SOURCE, "?"),
                   [e for e in examples if isinstance(e, str)], checkpoint.step)


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
    checkpoint = load_checkpoint(path)
    meta = checkpoint.metadata
    if META_SOURCE not in meta or META_TOKENIZER not in meta:
        raise CheckpointError(f"{path}: has no scenario metadata (source, tokenizer); it was not "
                              f"written by `tui-tfs train` or the training screen, so it cannot "
                              f"be explored")
    try:
        tokenizer = tokenizer_from_dict(json.loads(meta[META_TOKENIZER]))
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: its scenario metadata is damaged: {error}") from None
    model = model_from_checkpoint(checkpoint, path)
    scenario = scenario_of(Trained(path, model, tokenizer, meta.get(META_LAYOUT, ""),
                                   meta[META_SOURCE], [], checkpoint.step))
    if META_TRAIN in meta:  # the run's own settings (steps, schedule), as --resume uses them
        try:
            scenario.train_config = train_config_from_dict(json.loads(meta[META_TRAIN]))
        except (ValueError, TypeError) as error:
            raise RunError(f"{path}: its stored training settings are unusable: {error}; "
                           f"retrain it with tui-tfs train") from None
    scenario.model_config = checkpoint.config
    bad = [name for name, array in checkpoint.state_dict.items()
           if array.dtype.kind == "f" and not np.isfinite(array).all()]
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
        raise RunError(f"{trained.path} was trained on {trained.source!r}, which cannot be "
                       f"loaded now: {error}") from None
    if scenario.tokenizer.vocab != trained.tokenizer.vocab:
        raise RunError(f"{trained.path}: the scenario {trained.source!r} now has a different "
                       f"vocabulary than when this model was trained (its data changed); "
                       f"retrain it, or restore the old data")
    return scenario


# -- small helpers ---------------------------------------------------------------------------------
class _StopFlag:
    """SIGINT handler: the first Ctrl-C asks for a stop; the second raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.requested = False

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _metric_name(metric: str) -> str:
    """Short label of the held-out metric on the progress bar."""
    return {"exact_match": "exact", "loss": "held-out"}.get(metric, metric)


def _format_metric(metric: str, value: float) -> str:
    return f"{value:.1%}" if metric in ("exact_match", "token_accuracy") else f"{value:.4f}"


def _eval_line(stats: StepStats, metrics: dict[str, float], scenario: Scenario) -> str:
    """One line per evaluation, under 80 columns: the run's history stays on screen."""
    line = f"step {stats.step:>5} | train {stats.loss:.4f} | held-out loss {metrics['loss']:.4f}"
    if "exact_match" in metrics:
        return line + f", tokens {metrics['token_accuracy']:.1%}, exact {metrics['exact_match']:.1%}"
    line += f", ppl {metrics['perplexity']:.3f}"
    if "entropy" in metrics:
        line += f" (best {metrics['entropy']:.4f})"
    return line


def _open_log(path: Path | None, append: bool):
    if path is None:
        return None
    fresh = not (append and path.exists())
    handle = path.open("a" if not fresh else "w", newline="", encoding="utf-8")
    if fresh:
        csv.writer(handle).writerow(["step", "loss", "lr", "grad_norm", "tokens_per_s", "held_out"])
    return handle


def _write_log(handle, stats: StepStats, held: float | None) -> None:
    csv.writer(handle).writerow([stats.step, repr(stats.loss), repr(stats.lr), repr(stats.grad_norm),
                                 f"{stats.tokens_per_s:.1f}", "" if held is None else repr(held)])
