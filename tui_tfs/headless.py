"""Headless training: the `tui-tfs train` loop and its checkpoints (reopening them is
`scenarios.checkpoints`).

A run trains a scenario's model with the engine's `Trainer`, shows a Rich progress bar, looks
at the held-out split every `eval_every` steps and saves a checkpoint every `checkpoint_every`
steps and at the end. A checkpoint is the engine's safetensors file: the weights, the model
config, the trainer's state (optimizer moments, step, random generators) so a run resumes
bit for bit, and the scenario's metadata (its source, tokenizer, layout) so `generate` and
`eval` can rebuild everything from the file alone.

Ctrl-C: the first press asks the loop to stop after the current step; the run then saves a
checkpoint (written atomically by the engine: a temporary file renamed into place) and exits
130. A second press stops at once, keeping the last complete checkpoint as it is.

Faults lose nothing: the checkpoint path and the log are checked before the first step (a
directory, a symlink, a device, a folder that cannot be written are refused); a save that
fails (disk full, permissions) stops the run with one message and leaves the previous
checkpoint as it was; a step whose loss or gradients go NaN/Inf stops the run (`diverged`)
without saving, so the checkpoint on disk keeps its last finite weights. A resumed run's CSV
log loses the rows after the checkpoint's step, which the run then repeats.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from engine.training.checkpoint import (Checkpoint, CheckpointError, check_writable_path, load_checkpoint,
                               model_from_checkpoint, remove_stale_temp_files)
from engine.training.trainer import StepStats, Trainer
from engine.training.train_config import train_config_from_dict
from scenarios import Scenario, load_scenario
from scenarios.base import META_SOURCE, META_TRAIN
from scenarios.checkpoints import check_scenario_metadata, save
from scenarios.limits import memory_limit


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
    diverged: StepStats | None = None  # the step whose loss/gradients went NaN/Inf: the run
    #                                    stopped there without saving
    checkpoint_step: int | None = None  # the step the checkpoint on disk holds


def prepare(source: str, options: RunOptions) -> tuple[Scenario, Trainer, list[str]]:
    """Scenario, model, trainer and notes on adjusted settings for a run, resumed from
    `options.out` if asked.

    Everything is checked before training starts: a bad scenario or an incompatible
    checkpoint is a RunError / ScenarioError with the fix, never a half-built run.
    """
    check_output(options.out)
    if options.log is not None:
        check_log(options.log)
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
        except (ValueError, TypeError, RecursionError) as error:
            raise RunError(f"{options.out}: its stored training settings are unusable: "
                           f"{str(error)[:200]}; it cannot be resumed (train to a new --out)") from None
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
    previous = load_checkpoint(options.out, memory_limit=memory_limit())
    check_scenario_metadata(options.out, previous)
    trained_on = previous.metadata.get(META_SOURCE)
    if trained_on != scenario.source:
        raise RunError(f"{options.out} was trained on {str(trained_on)[:80]!r}, not {scenario.source!r}; "
                       f"resume it with that scenario or train to a new --out")
    return previous


def run(scenario: Scenario, trainer: Trainer, options: RunOptions, console: Console) -> RunResult:
    """Train to the configured total steps with a progress bar; see the module docstring."""
    total = scenario.train_config.steps
    done_before = trainer.step_count
    eval_every = options.eval_every or max(1, total // 10)
    checkpoint_every = options.checkpoint_every or eval_every
    metric = scenario.primary_metric
    result = RunResult(done_before, False, options.out if options.resume else None, {}, [], 0.0,
                       checkpoint_step=done_before if options.resume else None)
    log = _open_log(options.log, done_before if options.resume else None)

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
                if stats.nonfinite:  # stop; the checkpoint on disk keeps its finite weights
                    result.diverged = stats
                    if log is not None:
                        _write_log(log, stats, None)
                    break
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
                    _save_during_run(scenario, trainer, options.out, result)
            if stop.requested and trainer.step_count > 0 and result.diverged is None:
                # stopped between steps: the state is whole, so this save loses nothing
                _save_during_run(scenario, trainer, options.out, result)
                result.interrupted = True
        except KeyboardInterrupt:  # the second Ctrl-C: stop now, keep the last checkpoint
            result.interrupted = True
        finally:
            if log is not None:
                log.close()
    result.steps_done = trainer.step_count
    result.seconds = time.perf_counter() - start
    return result


def _save_during_run(scenario: Scenario, trainer: Trainer, path: Path, result: RunResult) -> None:
    """save(), with a failure turned into a RunError that says what is still on disk."""
    try:
        result.checkpoint = save(scenario, trainer, path, result.metrics)
        result.checkpoint_step = trainer.step_count
    except (OSError, CheckpointError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        kept = (f"the previous checkpoint (step {result.checkpoint_step}) is intact"
                if result.checkpoint_step is not None else "no checkpoint had been written yet")
        raise RunError(f"cannot write the checkpoint {path} at step {trainer.step_count}: "
                       f"{reason}; {kept}") from None


def check_output(path: Path) -> None:
    """RunError unless a checkpoint can be written at `path`: a new name or a regular file,
    in a folder that exists (made if missing) and takes a new file. Checked before training,
    not at the first checkpoint 10% into the run."""
    try:
        check_writable_path(path)
        directory = path.parent if str(path.parent) else Path(".")
        directory.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(path)  # of a run killed mid-save
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                     dir=directory)
        os.close(fd)
        os.unlink(probe)
    except CheckpointError as error:
        raise RunError(f"--out {error}") from None
    except OSError as error:
        raise RunError(f"--out {path}: cannot write a checkpoint there: "
                       f"{error.strerror or error}; choose another --out") from None


def check_log(path: Path) -> None:
    """RunError unless the CSV log can be written at `path` (its folder is made if missing)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as error:
        raise RunError(f"--log {path}: {error.strerror or error}; give a file path in a folder") from None
    if info is not None and not os.path.isfile(path):
        raise RunError(f"--log {path} is not a regular file (a directory?); give a file name "
                       f"such as {path / 'log.csv'}" if os.path.isdir(path) else
                       f"--log {path} is not a regular file; give a new file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK) or (info is not None and not os.access(path, os.W_OK)):
            raise PermissionError(13, "permission denied")
    except OSError as error:
        raise RunError(f"--log {path}: cannot write there: {error.strerror or error}; "
                       f"choose another --log") from None


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


LOG_HEADER = ["step", "loss", "lr", "grad_norm", "tokens_per_s", "held_out"]


def _open_log(path: Path | None, resumed_at: int | None):
    """The CSV log, fresh; or, resuming from step `resumed_at`, the existing one with the rows
    after that step dropped (a crash after the last checkpoint wrote steps the run repeats)."""
    if path is None:
        return None
    kept: list[list[str]] = []
    if resumed_at is not None and path.is_file():
        kept = _log_rows_up_to(path, resumed_at)
    try:
        handle = path.open("w", newline="", encoding="utf-8")
    except OSError as error:
        raise RunError(f"--log {path}: cannot write there: {error.strerror or error}") from None
    writer = csv.writer(handle)
    writer.writerow(LOG_HEADER)
    writer.writerows(kept)
    return handle


def _log_rows_up_to(path: Path, step: int) -> list[list[str]]:
    """The data rows of a log we wrote whose step is at most `step` (none if it is not ours)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    if not rows or rows[0] != LOG_HEADER:
        return []
    return [row for row in rows[1:] if row and row[0].isdigit() and int(row[0]) <= step]


def _write_log(handle, stats: StepStats, held: float | None) -> None:
    csv.writer(handle).writerow([stats.step, repr(stats.loss), repr(stats.lr), repr(stats.grad_norm),
                                 f"{stats.tokens_per_s:.1f}", "" if held is None else repr(held)])
