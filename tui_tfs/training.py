"""Training inside the app, without Textual: the controller the training screen drives.

The controller owns the engine's `Trainer` for the session's model (the same `Trainer.step`
that `tui-tfs train` runs), the run's history (every step's stats, the held-out evaluations,
markers where the learning rate or a break-it switch changed or a step went non-finite), and
the requests the screen makes between steps (pause, stop, a new learning rate, a switch).

    controller = TrainingController(scenario, model)
    controller.start()
    controller.run_for(0.25)          # steps for a quarter second (the screen's worker loop)
    controller.request("pause")       # honoured between two steps
    controller.save()                 # checkpoints/<name>.safetensors, like `tui-tfs train`
    controller.replaces(path)         # why saving there would replace another run's file
    trace, before = controller.step_traced()  # exactly one step, recorded: forward, loss,
                                      # backward and the optimizer's update, per parameter
    controller.snapshots.kept         # the run every SNAPSHOT_EVERY steps (engine Snapshots:
                                      # step, loss, weights, .model()), oldest first
    controller.branch(snapshot, lr=1e-3)  # train on from a snapshot with other settings; the
    controller.keep("other")          # run it left is drawn beside it until one is kept

Snapshots: one at the start, one every SNAPSHOT_EVERY steps and one at every pause, within
SNAPSHOT_BUDGET bytes (past it the spacing doubles: what is kept spreads over the whole run).
Copying the weights and moments every 10 steps costs well under 1% of a step (README).

Speed: `set_speed` caps the steps a second (SPEEDS; training_speed.py).

Threads: a worker thread calls `run_for`; the UI thread reads the history (lists only ever
appended to) and changes settings through methods that take `lock`, which `run_for` holds for
each step and evaluation, so a change always lands between two steps.
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.maths.facts import facts_by_path
from engine.maths.models import build_model
from engine.maths.recorder import Recorder, recording
from engine.maths.switches import with_break
from engine.maths.batch import Batch
from engine.trace.trace import Trace
from engine.training.snapshots import Snapshots
from engine.training.trainer import StepStats, Trainer

from .branches import Branching
from .checkpoints import checkpoint_info, claim_new_file, file_mark
from .training_generation import Generating
from .training_speed import PACE_SLICE, SPEEDS, Pacing  # noqa: F401 (SPEEDS: the screen's)

READY, RUNNING, PAUSED, STOPPED, FINISHED, DIVERGED = (
    "ready", "running", "paused", "stopped", "finished", "diverged")
EVAL_N = 50  # held-out examples per in-run evaluation (the CLI's final eval uses more)
N_PREDICTIONS = 6  # rows of the predictions table
SNAPSHOT_EVERY = 10  # steps between two snapshots (before thinning doubles it)
SNAPSHOT_BUDGET = 32 * 2**20  # bytes all snapshots of a run may hold (reverse: ~60 of them)


@dataclass
class Marker:
    """Something that happened at a step, drawn on the loss plot."""

    step: int  # the step it applies from
    kind: str  # "lr" | "break" | "branch" | "nan"
    text: str  # what, in words


@dataclass
class Evaluation:
    """One look at the held-out split."""

    step: int
    metrics: dict[str, float]  # scenario.evaluate(): loss, perplexity, exact_match ...
    predictions: list = field(default_factory=list)  # scenarios.Prediction rows


class TrainingController(Branching, Generating, Pacing):
    """One in-app training run of a scenario's model; see the module docstring."""

    Marker = Marker  # what a branch marks its step with (branches.py)

    def __init__(self, scenario, model, eval_every: int | None = None,
                 checkpoint_path: str | Path | None = None,
                 trainer_state: dict[str, np.ndarray] | None = None) -> None:
        """`checkpoint_path`: the checkpoint this run was opened from (it saves back there);
        `trainer_state` (that checkpoint's Trainer.state()) resumes the run at its step,
        with its optimizer moments and batch generator; ValueError if it does not fit. A run
        saved complete (what `tui-tfs train` leaves) is stretched to twice its length, as
        `tui-tfs train --resume --steps` would: the schedule is laid over the longer run."""
        self.scenario = scenario
        self.config = dataclasses.replace(scenario.train_config)  # this run's settings
        saved_at = int(trainer_state.get("trainer.step", 0)) if trainer_state else 0
        stretched = saved_at >= self.config.steps
        if stretched:
            self.config = dataclasses.replace(self.config, steps=saved_at + self.config.steps)
        self.total_steps = self.config.steps  # the run ends here (the schedule's length)
        self.eval_every = max(10, self.total_steps // 50) if eval_every is None else eval_every
        self.checkpoint_path = Path(checkpoint_path or Path("checkpoints") /
                                    f"{Path(scenario.name).stem}.safetensors")
        self.lock = threading.RLock()  # held for each step, evaluation and settings change
        self.model = model
        self.trainer = Trainer(model, self.config, self._draw)
        if trainer_state:
            self.trainer.load_state(trainer_state)
        self.state = READY
        self.notice = ("space starts training" if self.step == 0 else  # what happened last
                       f"space resumes training at step {self.step}" + (
                           f" (its run was complete; now to step {self.total_steps})"
                           if stretched else ""))
        self.history: list[StepStats] = []  # every step of this run
        self.layer_norms: dict[str, list[float]] = {}  # group -> gradient norm per step
        self.evaluations: list[Evaluation] = []
        self.markers: list[Marker] = []
        self.last_batch: Batch | None = None  # the batch of the latest step
        self.diverged_at: StepStats | None = None  # the first non-finite step
        self.saved: Path | None = None
        # the file that holds this run, as it was when opened or saved (checkpoints.file_mark:
        # path, inode, size, mtime): saving over any other file, or over this one written
        # since by another run, replaces someone's work, and the screen asks first
        self.file: tuple | None = file_mark(self.checkpoint_path) if checkpoint_path else None
        self.saved_step = self.step  # the step a checkpoint holds: nothing to lose before training
        self._request: str | None = None  # "pause" | "stop", read between steps
        self._gen_model = None  # a copy of the weights for generating while training runs
        self.steps_per_second: float | None = None  # the speed cap (SPEEDS); None: as fast as it goes
        self.clock = time.perf_counter  # seconds; tests give a fake one with a fake `sleep`
        self.sleep = time.sleep
        self._last_step_at = -math.inf  # `clock` when the latest step started
        # asked before starting and before each step: a reason not to train (class mode's
        # memory limit, fair_share.memory_reason) or None; `held` keeps the last one given
        self.guard: Callable[[], str | None] | None = None
        self.held: str | None = None
        self.snapshots = Snapshots(SNAPSHOT_EVERY, SNAPSHOT_BUDGET)  # this run's, to rewind to
        first = self.snapshots.take(self.trainer) if self._fits_snapshots() else None
        if first is None:  # a model too large: no timeline rather than a budget overrun
            self.snapshots = Snapshots(2**62, SNAPSHOT_BUDGET)
        self.label = "run"  # this run's name on the plot's legend once a branch is drawn beside it
        self.other = None  # branches.Run: the run a branch left, drawn beside it until one is kept
        self.step_watchers: list = []  # watcher(controller, stats) after each step, lock held

    # -- facts ---------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        return self.trainer.step_count

    @property
    def latest(self) -> StepStats | None:
        return self.history[-1] if self.history else None

    @property
    def evaluation(self) -> Evaluation | None:
        return self.evaluations[-1] if self.evaluations else None

    @property
    def uniform_loss(self) -> float:
        """ln(V): the loss of a uniform guess over the vocabulary."""
        return math.log(self.model.config.vocab_size)

    @property
    def optimum(self) -> float | None:
        """The lowest possible held-out loss, when the scenario knows it."""
        return self.scenario.entropy

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    @property
    def unsaved(self) -> bool:
        """Training runs, or took steps no checkpoint holds, or a branch's other run is beside
        this one: quitting now would lose them."""
        return self.running or self.step != self.saved_step or self.other is not None

    def replaces(self, path: str | Path) -> str | None:
        """Why saving this run to `path` would replace work ("it holds another run of
        reverse (step 300, exact 98.0%)"), or None: no file there, or it holds this run as
        this run left it."""
        mark = file_mark(Path(path))
        if mark is None or mark == self.file:
            return None
        if self.other is not None and self.other.file == mark:
            return f"it holds {self.other.label}, the run the branch left, at step " \
                   f"{self.other.saved_step}"
        info = checkpoint_info(Path(path))
        if info is None:
            return "it is not a checkpoint"
        again = self.file is not None and self.file[0] == mark[0]
        return (f"it was written since this run {'saved' if self.saved else 'opened'} it, "
                f"by another run ({info.summary()})" if again else
                f"it holds another run of {info.scenario} ({info.summary()})")

    # -- the run ---------------------------------------------------------------------------------
    def _draw(self, rng: np.random.Generator) -> Batch:
        """The scenario's batch maker, keeping the batch so it can be inspected."""
        self.last_batch = self.scenario.next_batch(rng)
        return self.last_batch

    def start(self) -> bool:
        """Start or resume (False, with a notice, when the run has no steps left)."""
        if self.step >= self.total_steps:
            self.state = FINISHED
            self.notice = f"the run is complete ({self.total_steps} steps)"
            return False
        if self._held("not started"):
            return False
        self._request = None
        self.state = RUNNING
        self.notice = "training" if self.step == 0 else f"resumed at step {self.step}"
        return True

    def _held(self, what: str) -> bool:
        """True, with the notice "`what`: <the guard's reason>", when the guard says stop."""
        self.held = self.guard() if self.guard is not None else None
        if self.held is not None:
            self.notice = f"{what}: {self.held}"
        return self.held is not None

    def request(self, what: str) -> None:
        """Ask the running loop to "pause" or "stop" after the current step."""
        if what not in ("pause", "stop"):
            raise ValueError(f"request must be 'pause' or 'stop', got {what!r}")
        if self.state == RUNNING:
            self._request = what
        elif what == "stop" and self.state == PAUSED:
            self.state, self.notice = STOPPED, f"stopped at step {self.step}"

    def run_for(self, seconds: float, cancelled=lambda: False) -> int:
        """Train while RUNNING for about `seconds`; returns the steps taken. Checks
        `cancelled()` and the requests before every step."""
        taken = 0
        deadline = self.clock() + seconds
        while self.state == RUNNING:
            due = self._pace(deadline, cancelled)  # outside the lock: settings change meanwhile
            with self.lock:  # a request made while the UI holds the lock is seen here
                if cancelled():
                    self.snapshot_now()
                    self.state, self.notice = PAUSED, f"paused at step {self.step}"
                    break
                if self._request is not None:
                    self._honour(self._request)
                    break
                if self.step >= self.total_steps:
                    if self.evaluation is None or self.evaluation.step != self.step:
                        self.evaluate()
                    self.snapshot_now()
                    self.state, self.notice = FINISHED, f"finished: {self.step} steps"
                    break
                if not due:  # the window ended while waiting for the next step's turn
                    break
                if self._held(f"paused at step {self.step}"):
                    self.state = PAUSED
                    break
                self._last_step_at = self.clock()
                stats = self.trainer.step()
                self._record(stats)
                if stats.nonfinite:
                    self._diverge(stats)
                elif self.eval_every and stats.step % self.eval_every == 0:
                    self.evaluate()
            taken += 1
            if self.clock() >= deadline:
                break
        return taken

    def step_traced(self, ascii_only: bool = False):
        """Train exactly one step with recording on: returns (trace, model before), the trace
        holding the step's forward, loss, backward and, after them, the optimizer's update (one
        event per parameter), and a copy of the model with the weights the step started from
        (the ones its forward and backward ran on; the live model has the updated ones). The
        same `Trainer.step` as a running step, so the run goes on exactly as if it had not been
        recorded. None, with a notice, while training runs or when the run is complete."""
        with self.lock:
            if self.running or self.step >= self.total_steps:
                self.notice = ("pause first (space): one step at a time needs training stopped"
                               if self.running else
                               f"the run is complete ({self.total_steps} steps)")
                return None
            before = build_model(self.model.config)
            before.packed.data[...] = self.model.packed.data
            recorder = Recorder(long_lived=[p.data for p in self.model.params()],
                                facts=facts_by_path([self.model, self.trainer.loss_fn]))
            with recording(recorder):
                stats = self.trainer.step()
            self._record(stats)
            if stats.nonfinite:
                self._diverge(stats)
            else:
                if self.eval_every and stats.step % self.eval_every == 0:
                    self.evaluate()
                self.state = FINISHED if self.step >= self.total_steps else PAUSED
                self.notice = (f"step {stats.step} trained alone and traced, loss "
                               f"{stats.loss:.4f} (space trains on)")
            batch = self.last_batch
            tokenizer = self.scenario.tokenizer

            def labels(ids):
                return [[tokenizer.label(int(i), ascii_only=ascii_only) for i in row] for row in ids]

            trace = Trace(recorder.events, self.model.config, batch, float(stats.loss),
                          None if batch.src is None else labels(batch.src), labels(batch.tgt_in),
                          labels(batch.tgt_out))
        return trace, before

    def _honour(self, what: str) -> None:
        self._request = None
        self.snapshot_now()
        if what == "stop":
            self.evaluate()
            self.state, self.notice = STOPPED, f"stopped at step {self.step} (space trains on)"
        else:
            self.state, self.notice = PAUSED, f"paused at step {self.step}"

    def _record(self, stats: StepStats) -> None:
        self.history.append(stats)
        for group, norm in stats.layer_grad_norms.items():
            self.layer_norms.setdefault(group, []).append(norm)
        if not stats.nonfinite:
            self.snapshots.maybe_take(self.trainer, stats.loss)

        for watcher in self.step_watchers:  # e.g. the probe (tui_tfs/probe_watch.py)
            watcher(self, stats)

    def _fits_snapshots(self) -> bool:
        """Four snapshots or more fit the budget (weights and optimizer state, 3 or 2 copies
        of the parameters for Adam or SGD with momentum)."""
        return 4 * 3 * self.model.packed.data.nbytes <= SNAPSHOT_BUDGET

    def snapshot_now(self) -> None:
        """A snapshot of where the run stands (at a pause), unless one already is."""
        with self.lock:
            kept = self.snapshots.kept
            if kept and kept[-1].step != self.step:
                latest = self.latest
                self.snapshots.take(self.trainer, latest.loss if latest is not None and
                                    latest.step == self.step and not latest.nonfinite else None)

    def _diverge(self, stats: StepStats) -> None:
        # the trainer has already put back the weights and moments of the last finite step
        problem = stats.problem or "loss or gradient is not finite"
        self.markers.append(Marker(stats.step, "nan", problem))
        if self.diverged_at is None:
            self.diverged_at = stats
        self.state = DIVERGED
        # one status line of under 80 columns
        kept = (f"weights of step {stats.weights_of_step} kept" if stats.weights_of_step
                else "initial weights kept")
        self.notice = f"diverged at step {stats.step}: {problem}; update undone, {kept}"

    def evaluate(self) -> Evaluation:
        """Held-out metrics and the predictions table, now (in the calling thread)."""
        with self.lock:
            metrics = self.scenario.evaluate(self.model, n=EVAL_N)
            predictions = self.scenario.predictions(self.model, N_PREDICTIONS)
            evaluation = Evaluation(self.step, metrics, predictions)
            self.evaluations.append(evaluation)
            if self.history and self.history[-1].step == self.step:
                self.history[-1].eval_loss = metrics["loss"]
                self.history[-1].eval_accuracy = metrics.get("token_accuracy")
        return evaluation

    # -- changes between steps --------------------------------------------------------------------
    def set_lr(self, lr: float) -> float:
        """A new peak learning rate from the next step on (the schedule keeps its shape)."""
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"the learning rate must be a positive number, got {lr!r}")
        with self.lock:
            self.trainer.set_lr(lr)
            self.config = self.trainer.config
            self.markers.append(Marker(self.step + 1, "lr", f"lr {lr:.3g}"))
            self.notice = f"learning rate {lr:.3g} from step {self.step + 1}"
        return lr

    def toggle_break(self, name: str) -> bool:
        """Flip a break-it switch: the model is rebuilt with the same weights; the optimizer
        keeps its moments (the parameters keep their shapes). Returns the new value."""
        with self.lock:
            model, value = with_break(self.model, name)
            self.adopt(model)
            self.markers.append(Marker(self.step + 1, "break", f"{name} {'on' if value else 'off'}"))
            self.notice = f"break-it switch {name} {'ON' if value else 'off'} from step {self.step + 1}"
        return value

    def adopt(self, model) -> None:
        """Train `model` from now on (a rebuilt twin of the current one), keeping the step,
        the generators and, when the parameters match, the optimizer's moments."""
        with self.lock:
            if model is self.model:
                return
            state = self.trainer.state()
            trainer = Trainer(model, self.config, self._draw)
            try:
                trainer.load_state(state)
            except (ValueError, KeyError):
                trainer.step_count = self.trainer.step_count
                self.notice = "the optimizer restarted: the new model's parameters differ"
            self.model, self.trainer = model, trainer

    # -- saving -----------------------------------------------------------------------------------
    def save(self, path: str | Path | None = None, replace: bool = False) -> Path:
        """A checkpoint like `tui-tfs train` writes (resumable, readable by eval/generate) at
        `path` (default: the run's checkpoint path) when the file there holds this run or
        `replace` says to write over it; else in a new file claimed there or beside it
        (`claim_new_file`), never over a file another run wrote, even a moment ago in another
        process. Returns where it went."""
        from scenarios.checkpoints import save

        with self.lock:
            path = Path(path or self.checkpoint_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            claimed = not replace and (self.file is None or file_mark(path) != self.file)
            if claimed:
                path = claim_new_file(path)
            metrics = self.evaluation.metrics if self.evaluation is not None else None
            try:
                self.saved = save(self.scenario, self.trainer, path, metrics)
            except BaseException:
                if claimed and path.exists() and path.stat().st_size == 0:
                    path.unlink()  # the empty file claimed for it
                raise
            self.saved_step = self.step
            self.file = file_mark(self.saved)
            if self.other is not None and self.other.file is not None and \
                    self.file is not None and self.other.file[0] == self.file[0]:
                self.other.file, self.other.saved_step = None, -1  # no file holds it now
            self.notice = f"saved step {self.step} to {self.saved}"
        return self.saved

    def save_snapshot(self, snapshot, path: str | Path) -> Path:
        """A checkpoint of `snapshot` (the run as it was then, resumable from its step), in
        the same format as `save`; the run itself is untouched. It overwrites `path`: the
        screen asks first."""
        from scenarios.checkpoints import save

        trainer = Trainer(snapshot.model(), dataclasses.replace(snapshot.train_config),
                          self._draw)
        trainer.load_state(snapshot.trainer_state)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        saved = save(self.scenario, trainer, path, None)
        self.notice = f"saved the snapshot of step {snapshot.step} to {saved}"
        return saved

    def diverged_model(self):
        """A copy of the model holding the weights that gave the non-finite step (the live
        model has the last good ones back), to find the first NaN in; None if none."""
        failed = self.trainer.failed_weights
        if failed is None:
            return None
        with self.lock:
            model = build_model(self.model.config)
            model.packed.data[...] = failed
        return model
