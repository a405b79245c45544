"""How to train: `TrainConfig`, a typed config with a comment per field, and its checks.

`validate()` refuses a bad field with one message naming it and the fix (no inf or nan
anywhere; the ConfigError's `field` names it too, and a choice is checked against its field's
Literal type); `train_config_from_dict` rebuilds a config from `to_dict()` output (a checkpoint's
stored settings) and checks it the same way.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..maths.config import ConfigError, check_choice, quote_value
from ..maths.optim import OptimizerName
from ..maths.schedule import ScheduleName


@dataclass
class TrainConfig:
    """How to train; every field has a comment, `validate()` names a bad field and the fix."""

    steps: int = 1000  # number of optimizer steps in a full run
    batch_size: int = 32  # sequences per batch (used by the scenario's batch maker)
    optimizer: OptimizerName = "adam"  # "sgd", "adam" or "adamw"
    lr: float = 1e-3  # peak learning rate (the schedule scales it per step)
    betas: tuple[float, float] = (0.9, 0.98)  # Adam's moment decay rates (the paper's values)
    eps: float = 1e-9  # Adam's denominator guard (the paper's value)
    weight_decay: float = 0.0  # L2 for sgd/adam; decoupled decay of all params for adamw
    momentum: float = 0.0  # SGD momentum, in [0, 1)
    schedule: ScheduleName = "constant"  # "constant", "inverse_sqrt" (the paper's) or "cosine"
    warmup_steps: int = 0  # linear warmup length; inverse_sqrt peaks here (needs >= 1)
    min_lr: float = 0.0  # where the cosine schedule ends, in [0, lr]
    clip_norm: float | None = 1.0  # clip the global gradient norm to this; None = no clipping
    label_smoothing: float = 0.0  # in [0, 1); the paper uses 0.1
    seed: int = 0  # seeds the batch generator (model init uses the model config's seed)
    eval_every: int = 0  # evaluate on held-out batches every this many steps; 0 = never
    shards: int = 1  # split each batch's rows into this many shards, run side by side on the
    #                  engine's threads (engine/training/data_parallel.py); results do not depend on threads

    def validate(self) -> None:
        _positive_int("steps", self.steps)
        _positive_int("batch_size", self.batch_size)
        check_choice(self, "optimizer")
        _positive("lr", self.lr)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ConfigError(f"betas must be a pair like (0.9, 0.98), got {quote_value(self.betas)}",
                              "betas")
        for i, beta in enumerate(self.betas):
            _fraction(f"betas[{i}]", beta, field="betas")
        _positive("eps", self.eps)
        _non_negative("weight_decay", self.weight_decay)
        _fraction("momentum", self.momentum)
        check_choice(self, "schedule")
        _non_negative_int("warmup_steps", self.warmup_steps)
        if self.schedule == "inverse_sqrt" and self.warmup_steps < 1:
            raise ConfigError("warmup_steps must be >= 1 for the inverse_sqrt schedule (its peak); "
                              "try 100", "warmup_steps")
        if self.schedule == "cosine" and self.warmup_steps >= self.steps:
            raise ConfigError(f"warmup_steps ({self.warmup_steps}) must be below steps "
                              f"({self.steps}) for the cosine schedule", "warmup_steps")
        if not (_is_number(self.min_lr) and 0 <= self.min_lr <= self.lr):
            raise ConfigError(f"min_lr must be in [0, lr={self.lr}], got {quote_value(self.min_lr)}",
                              "min_lr")
        if self.clip_norm is not None:
            _positive("clip_norm", self.clip_norm)
        _fraction("label_smoothing", self.label_smoothing)
        _non_negative_int("seed", self.seed)
        if self.seed >= 2**63:
            raise ConfigError(f"seed must be below 2**63, got {quote_value(self.seed)}", "seed")
        _non_negative_int("eval_every", self.eval_every)
        _positive_int("shards", self.shards)
        if self.shards > self.batch_size:
            raise ConfigError(f"shards ({self.shards}) must be at most batch_size "
                              f"({self.batch_size}): each shard takes at least one sequence", "shards")

    def to_dict(self) -> dict:
        return asdict(self)


def train_config_from_dict(data: dict) -> TrainConfig:
    """Rebuild from `to_dict()` output; unknown keys are an error, not ignored."""
    if not isinstance(data, dict):
        raise ConfigError(f"training settings must be a table, got {quote_value(data)}")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(map(str, set(data) - known))
    if unknown:
        raise ConfigError(f"unknown training field(s) {quote_value(unknown)}; known fields are {sorted(known)}")
    data = dict(data)
    if isinstance(data.get("betas"), list):
        data["betas"] = tuple(data["betas"])
    config = TrainConfig(**data)
    config.validate()
    return config


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(name: str, value) -> None:
    if not (_is_number(value) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a positive number (not inf or nan), got {quote_value(value)}",
                          name)


def _non_negative(name: str, value) -> None:
    if not (_is_number(value) and math.isfinite(value) and value >= 0):
        raise ConfigError(f"{name} must be a number >= 0 (0 turns it off; not inf or nan), "
                          f"got {quote_value(value)}", name)


def _fraction(name: str, value, field: str | None = None) -> None:
    if not (_is_number(value) and 0 <= value < 1):
        raise ConfigError(f"{name} must be in [0, 1), got {quote_value(value)}", field or name)


def _positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {quote_value(value)}", name)


def _non_negative_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be an integer >= 0, got {quote_value(value)}", name)

