"""The training loop: the one loop the headless CLI and the in-app training both run.

One step is

    batch   = next_batch(rng)                       the caller's data, drawn with our seeded rng
    logits  = run_model(model, batch)               (B, T, V)
    loss    = cross_entropy(logits, batch.tgt_out)  mean over non-pad target tokens
    grads   = backward                              fills model.packed.grad
              (only with TrainConfig.shards > 1: forward, loss and backward run per shard of
               the batch's rows, side by side, and the gradients are summed:
               engine/training/data_parallel.py)
    norm    = ||grads||                             before clipping; also per layer group
    if loss and norm are finite:  clip, optimizer.step(schedule(step))
    else:                         skip the update: the weights stay the last good ones

and reports a `StepStats`. Observers (the UI, the CLI's printer) get each StepStats through a
callback and can stop the run by returning False, so the loop knows nothing of who watches.

Everything random is seeded: batches come from the trainer's generator (TrainConfig.seed),
initialisation and dropout from the model's (ModelConfig.seed). Same seeds, same losses.
`state()` / `load_state()` carry the step count, both generators and the optimizer's moments
as plain arrays, so a run can be saved in a checkpoint and resumed bit for bit.

Shapes: B batch, S source length, T target length, V vocabulary.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from ..maths.batch import Batch, model_inputs, run_model
from ..maths.config import ConfigError, quote_value
from .data_parallel import DataParallel
from ..maths.layers import Dropout
from .evaluation import evaluate
from .memory import keep_freed_memory
from ..maths.loss import CrossEntropyLoss, token_hits
from ..maths.optim import build_optimizer, clip_grad_norm
from ..maths.recorder import active
from ..maths.schedule import build_schedule
from .train_config import TrainConfig


@dataclass
class StepStats:
    """What one step did, for plots and logs."""

    step: int  # 1-based number of this step
    loss: float  # mean cross-entropy over the batch's target tokens
    lr: float  # learning rate this step used (or would have, if skipped)
    grad_norm: float  # global gradient L2 norm, before clipping
    tokens: int  # target tokens that counted (non-pad tgt_out)
    seconds: float  # wall time of the step (batch, forward, backward, update; not eval)
    tokens_per_s: float
    accuracy: float  # fraction of counted tokens whose argmax is right
    layer_grad_norms: dict[str, float] = field(default_factory=dict)  # group -> norm, pre-clip
    nonfinite: bool = False  # loss, gradient or updated weights were NaN/Inf: see `problem`
    problem: str = ""  # what went non-finite, in words ("loss is nan"); "" on a good step
    weights_of_step: int | None = None  # after a non-finite step: the step whose loss and
    #                                     gradients the restored weights gave (finite ones)
    eval_loss: float | None = None  # held-out loss, on steps that evaluated
    eval_accuracy: float | None = None


class Trainer:
    """Owns the optimizer, schedule, loss and batch generator of one training run."""

    def __init__(self, model, train_config: TrainConfig,
                 next_batch: Callable[[np.random.Generator], Batch],
                 eval_batches: Callable[[], Iterable[Batch]] | None = None):
        train_config.validate()
        self.model = model
        self.config = train_config
        self.next_batch = next_batch  # draws a training batch with the rng it is given
        self.eval_batches = eval_batches  # held-out batches, used every eval_every steps
        self.rng = np.random.default_rng(train_config.seed)
        self.step_count = 0  # steps taken (skipped non-finite steps count too)
        self.loss_fn = CrossEntropyLoss(model.config.pad_id, train_config.label_smoothing)
        self.optimizer = build_optimizer(train_config.optimizer, model.packed,
                                         **_optimizer_settings(train_config))
        self.schedule = build_schedule(train_config.schedule, train_config.lr,
                                       train_config.warmup_steps, train_config.steps,
                                       train_config.min_lr)
        self._groups = _group_ranges(model)  # group -> [(start, stop)]
        self._dropout_rngs = _dropout_generators(model)
        # the rows of a batch split across replicas only when asked for (shards > 1)
        self.data_parallel = (DataParallel(model, train_config.shards, self.loss_fn)
                              if train_config.shards > 1 else None)
        self._last_good: dict[str, np.ndarray] = {}  # weights and optimizer buffers (P,) as
        #   they were before the latest update: a non-finite step puts them back
        self._last_good_step: int | None = None  # the step those weights were measured at
        self._last_good_count = 0  # the optimizer's step count then
        self.failed_weights: np.ndarray | None = None  # (P,) the weights that went non-finite,
        #   copied at the latest non-finite step before the good ones came back (for inspecting)
        keep_freed_memory()  # steps reuse the same memory instead of faulting in fresh pages

    def set_lr(self, lr: float) -> None:
        """A new peak learning rate from the next step on; the schedule keeps its shape."""
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ConfigError(f"lr must be a positive number, got {lr!r}", "lr")
        self.config = replace(self.config, lr=float(lr), min_lr=min(self.config.min_lr, lr))
        self.schedule = build_schedule(self.config.schedule, self.config.lr,
                                       self.config.warmup_steps, self.config.steps,
                                       self.config.min_lr)

    # -- one step -----------------------------------------------------------------------------
    def step(self) -> StepStats:
        start = time.perf_counter()
        step = self.step_count + 1
        batch = self.next_batch(self.rng)
        self.model.train()
        self.model.packed.zero_grad()
        # overflow to Inf/NaN is detected below and reported as `nonfinite`, not as warnings
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.data_parallel is not None and active() is None:
                # shards > 1: the same forward, loss and backward, a shard of rows per replica
                result = self.data_parallel.step(model_inputs(self.model, batch), batch.tgt_out)
                loss, correct, counted = result.loss, result.correct, result.tokens
            else:  # one pass (always when recording: a trace is the story of one pass)
                logits = run_model(self.model, batch)  # (B, T, V)
                loss = self.loss_fn.forward(logits, batch.tgt_out)
                self.model.backward(self.loss_fn.backward())
                correct, counted = token_hits(logits, batch.tgt_out, self.loss_fn.ignore_id)
            grad_norm = self.model.packed.grad_norm()
            layer_norms = self.layer_grad_norms()
        lr = self.schedule(step)
        problem = _nonfinite_problem(loss, grad_norm)
        if problem:
            self._restore_last_good()
        else:
            self._keep_last_good()
            if self.config.clip_norm is not None:
                clip_grad_norm(self.model.packed, self.config.clip_norm, norm=grad_norm)
            with np.errstate(over="ignore", invalid="ignore"):
                self.optimizer.step(lr)
            bad = [key for key, buffer in self._buffers().items() if not _all_finite(buffer)]
            if bad:  # e.g. an lr so large the step overflows: weights must never hold NaN/Inf
                problem = f"the update overflowed ({', '.join(bad)})"
                self._restore_last_good()
        self.step_count = step
        seconds = time.perf_counter() - start  # the training work only, not the evaluation
        stats = StepStats(step=step, loss=loss, lr=lr, grad_norm=grad_norm, tokens=counted,
                          seconds=seconds, tokens_per_s=counted / seconds if seconds > 0 else 0.0,
                          accuracy=correct / counted if counted else 0.0,
                          layer_grad_norms=layer_norms, nonfinite=bool(problem), problem=problem,
                          weights_of_step=self._last_good_step if problem else None)
        every = self.config.eval_every
        if every and self.eval_batches is not None and step % every == 0:
            stats.eval_loss, stats.eval_accuracy = self.evaluate(self.eval_batches())
        return stats

    def _buffers(self) -> dict[str, np.ndarray]:
        """The arrays an update changes: the packed weights and the optimizer's (P,) state."""
        buffers = {"weights": self.model.packed.data}
        for key in self.optimizer.state_keys:
            buffers[key] = getattr(self.optimizer, key)
        return buffers

    def _keep_last_good(self) -> None:
        """Copy the weights and moments before an update (into buffers allocated once)."""
        for key, buffer in self._buffers().items():
            kept = self._last_good.get(key)
            if kept is None or kept.shape != buffer.shape:
                kept = self._last_good[key] = np.empty_like(buffer)
            np.copyto(kept, buffer)
        self._last_good_step = self.step_count + 1
        self._last_good_count = self.optimizer.step_count

    def _restore_last_good(self) -> None:
        """Undo the latest update: a non-finite loss or gradient says it went wrong (the
        weights it made give NaN/Inf), so the weights of the last finite step come back."""
        self.failed_weights = self.model.packed.data.copy()
        if self._last_good_step is None:
            return  # no update applied yet: the weights are the initial ones
        for key, buffer in self._buffers().items():
            np.copyto(buffer, self._last_good[key])
        self.optimizer.step_count = self._last_good_count

    def layer_grad_norms(self) -> dict[str, float]:
        """L2 norm of the current gradient per group ("decoder.blocks.0", "tok_emb", ...)."""
        grad = self.model.packed.grad
        norms = {}
        for group, ranges in self._groups.items():
            total = 0.0
            for begin, stop in ranges:
                part = grad[begin:stop]  # a view: no copy
                total += float(np.dot(part, part))
            norms[group] = math.sqrt(total)
        return norms

    def evaluate(self, batches: Iterable[Batch]) -> tuple[float, float]:
        """(loss, accuracy) over batches in eval mode (no dropout), weighted by token count;
        the loss is the training loss (label smoothing included)."""
        return evaluate(self.model, batches, self.loss_fn)

    # -- many steps -------------------------------------------------------------------------
    def run(self, n_steps: int, callback: Callable[[StepStats], bool | None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> list[StepStats]:
        """Take up to n_steps steps, returning their stats.

        Stops early when should_stop() is true (checked before each step) or callback(stats)
        returns False (after the step).
        """
        history: list[StepStats] = []
        for _ in range(n_steps):
            if should_stop is not None and should_stop():
                break
            stats = self.step()
            history.append(stats)
            if callback is not None and callback(stats) is False:
                break
        return history

    # -- resuming ---------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Everything beyond the weights needed to resume, as plain arrays (checkpoint-ready)."""
        state = dict(self.optimizer.state_dict())  # "step", moments...
        state["trainer.step"] = np.array(self.step_count, dtype=np.int64)
        state["trainer.rng"] = _rng_to_array(self.rng)
        for i, generator in enumerate(self._dropout_rngs):
            state[f"trainer.dropout_rng.{i}"] = _rng_to_array(generator)
        return state

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore `state()` output; the model's weights are loaded separately. Everything is
        checked first (ValueError naming the problem), so a bad state changes nothing. The
        weights an update would be undone to are forgotten: a non-finite step right after keeps
        the weights loaded with this state."""
        ours = {k: v for k, v in state.items() if k.startswith("trainer.")}
        expected = {"trainer.step", "trainer.rng"}
        expected |= {f"trainer.dropout_rng.{i}" for i in range(len(self._dropout_rngs))}
        if set(ours) != expected:
            raise ValueError(f"trainer state must have keys {sorted(expected)}, got "
                             f"{quote_value(sorted(ours), 200)}; was it saved from a model with "
                             f"the same dropout setting?")
        step = np.asarray(state["trainer.step"])
        if step.shape != () or step.dtype.kind not in "iu" or not 0 <= int(step) < 2**63:
            raise ValueError(f"trainer.step must be one whole number >= 0, got dtype "
                             f"{step.dtype} shape {step.shape}")
        generators = [(self.rng, state["trainer.rng"])]
        generators += [(g, state[f"trainer.dropout_rng.{i}"]) for i, g in enumerate(self._dropout_rngs)]
        for _, array in generators:
            _check_rng_array(array)
        backup = self.optimizer.state_dict()
        self.optimizer.load_state_dict({k: v for k, v in state.items()
                                        if not k.startswith("trainer.")})
        try:
            for generator, array in generators:
                _rng_from_array(generator, array)
        except (ValueError, TypeError, OverflowError) as error:
            self.optimizer.load_state_dict(backup)
            raise ValueError(f"a saved random generator state is unusable: {error}") from None
        self.step_count = int(step)
        # the last good weights belong to the run before this state (a rewind: its future):
        # a non-finite step right after must keep the weights loaded with this state
        self._last_good_step = None
        self.failed_weights = None


# -- helpers ------------------------------------------------------------------------------------
def _nonfinite_problem(loss: float, grad_norm: float) -> str:
    """"" when both are finite, else what is wrong in words ("loss is nan")."""
    if not math.isfinite(loss):
        return f"loss is {loss}"
    if not math.isfinite(grad_norm):
        return f"gradient norm is {grad_norm}"
    return ""


def _all_finite(array: np.ndarray) -> bool:
    """No NaN or Inf in `array`, in one pass and no temporary: a float64 sum of float32 values
    cannot overflow, and any NaN or Inf makes the sum non-finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        return math.isfinite(float(np.sum(array, dtype=np.float64)))


def _optimizer_settings(config: TrainConfig) -> dict:
    if config.optimizer == "sgd":
        return {"lr": config.lr, "momentum": config.momentum, "weight_decay": config.weight_decay}
    return {"lr": config.lr, "betas": tuple(config.betas), "eps": config.eps,
            "weight_decay": config.weight_decay}


def _group_ranges(model) -> dict[str, list[tuple[int, int]]]:
    """group -> contiguous (start, stop) ranges of the flat buffer, neighbours merged. A
    parameter's group is the block its layer declares it is part of ("decoder.blocks.0"), or
    its layer outside the blocks ("tok_emb"): `Facts.block`, set where the model is built."""
    block_of = {name: module.facts.block or module.path for module in model.modules()
                for name in module.param_names().values()}
    groups: dict[str, list[tuple[int, int]]] = {}
    for name, where in model.packed.slices.items():
        ranges = groups.setdefault(block_of[name], [])
        if ranges and ranges[-1][1] == where.start:
            ranges[-1] = (ranges[-1][0], where.stop)
        else:
            ranges.append((where.start, where.stop))
    return groups


def _dropout_generators(model) -> list[np.random.Generator]:
    """The distinct generators the model's dropout layers draw from (saved for exact resume)."""
    found: dict[int, np.random.Generator] = {}
    for module in model.modules():
        if isinstance(module, Dropout):
            found.setdefault(id(module.rng), module.rng)
    return list(found.values())


_MASK64 = (1 << 64) - 1


def _rng_to_array(generator: np.random.Generator) -> np.ndarray:
    """A PCG64 generator's state as 6 uint64: state hi/lo, inc hi/lo, has_uint32, uinteger."""
    state = generator.bit_generator.state
    if state["bit_generator"] != "PCG64":
        raise ValueError(f"only PCG64 generators (np.random.default_rng) can be saved, "
                         f"got {state['bit_generator']}")
    s, inc = state["state"]["state"], state["state"]["inc"]
    return np.array([s >> 64, s & _MASK64, inc >> 64, inc & _MASK64,
                     state["has_uint32"], state["uinteger"]], dtype=np.uint64)


def _check_rng_array(array: np.ndarray) -> None:
    array = np.asarray(array)
    if array.shape != (6,) or array.dtype != np.uint64:
        raise ValueError(f"a saved generator state is 6 uint64 numbers, got dtype {array.dtype} "
                         f"shape {array.shape}")


def _rng_from_array(generator: np.random.Generator, array: np.ndarray) -> None:
    values = [int(v) for v in np.asarray(array, dtype=np.uint64)]
    if len(values) != 6:
        raise ValueError(f"a saved generator state has 6 numbers, got {len(values)}")
    generator.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": (values[0] << 64) | values[1], "inc": (values[2] << 64) | values[3]},
        "has_uint32": values[4], "uinteger": values[5],
    }
