"""How much memory a scenario asks for, worked out from its settings before anything is built.

A scenario file can ask for anything: `max_len = 30000` (4.5 GiB of random digits),
`d_model = 10**12`, `batch_size = 10**9`. Two estimates stop that with one message that gives
the number, before the memory is touched:

    data_bytes(settings)                       before the data is made (the examples, the
                                               random draws that make them, their encodings)
    scenario_bytes(settings, model, train, T, S)  before the scenario exists: data + model +
                                               optimizer + one step's activations (engine.maths.sizes)

The limit is 4 GiB unless raised on purpose: `[scenario] memory_limit_gib = 16` in the file,
`tui-tfs train --memory-limit 16`, or the TUI_TFS_MEMORY_LIMIT_GIB environment variable.
The estimates are rough (within about a factor of two) and err on the high side.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from engine.maths.config import ModelConfig
from engine.maths.sizes import format_bytes, training_bytes
from engine.training.train_config import TrainConfig

from .overrides import SettingError

DEFAULT_LIMIT_GIB = 4.0
LIMIT_VARIABLE = "TUI_TFS_MEMORY_LIMIT_GIB"
EVAL_BATCH = 100  # held-out batches are this big (Scenario.eval_batches), whatever batch_size is
EXAMPLE_OVERHEAD = 600  # bytes of Python objects per example: two strings, an Example, 3 arrays
TEXT_FACTOR = 24  # bytes per character of a text file once read, split and encoded


def memory_limit(gib: float | None = None) -> int:
    """The limit in bytes: `gib` if given, else the environment variable, else 4 GiB."""
    if gib is None:
        text = os.environ.get(LIMIT_VARIABLE, "")
        try:
            gib = float(text) if text else DEFAULT_LIMIT_GIB
        except ValueError:
            gib = DEFAULT_LIMIT_GIB
        if not (math.isfinite(gib) and gib > 0):
            gib = DEFAULT_LIMIT_GIB
    return int(gib * 1024**3)


def check_limit_setting(value: Any) -> float:
    """scenario.memory_limit_gib from a file: a positive number, or a SettingError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and 0 < value <= 1024**2):
        raise SettingError("scenario.memory_limit_gib must be a number of GiB above 0, like 16",
                           "scenario.memory_limit_gib")
    return float(value)


def data_bytes(settings: Any) -> int:
    """Estimated peak bytes of making a task's data from its settings (no data made)."""
    sizes = [getattr(settings, name, 0) for name in ("train_size", "test_size")]
    count = sum(sizes)
    text_file = getattr(settings, "text_file", "")
    text = _file_size(text_file) * TEXT_FACTOR if text_file else 0
    pairs_file = getattr(settings, "pairs_file", "")
    if pairs_file:  # a pairs file: read whole, cut into examples, encoded (its max_len draws nothing)
        return _file_size(pairs_file) * TEXT_FACTOR
    if hasattr(settings, "max_len"):  # digit strings: drawn as (2 * count, max_len) int64 rounds
        length = settings.max_len
        draws = 2 * max(64, 2 * count) * length * 8
        return draws + count * (EXAMPLE_OVERHEAD + 26 * length)
    if hasattr(settings, "digits"):  # sums: maybe a permutation of all 10**(2 digits) pairs
        space = 10 ** (2 * min(settings.digits, 6))
        permutation = space * 8 if space <= 4 * count else 2 * max(64, 2 * count) * 8
        return permutation + count * (EXAMPLE_OVERHEAD + 26 * (2 * settings.digits + 3))
    return text + count * EXAMPLE_OVERHEAD


def check_data(settings: Any, limit: int) -> None:
    need = data_bytes(settings)
    if need > limit:
        raise SettingError(
            f"data: these settings need about {format_bytes(need)} to make the data, past the "
            f"limit of {format_bytes(limit)}; lower {_data_keys(settings)}, or raise the limit "
            f"on purpose with [scenario] memory_limit_gib (or tui-tfs train --memory-limit)")


def check_training(settings: Any, model: ModelConfig, train: TrainConfig, target_len: int,
                   source_len: int, limit: int) -> None:
    """SettingError when data + model + a training step need more than `limit` bytes."""
    moments = {"sgd": 1 if train.momentum else 0}.get(train.optimizer, 2)
    batch = max(train.batch_size, EVAL_BATCH)
    need = data_bytes(settings) + training_bytes(model, batch, target_len, source_len, moments)
    if need > limit:
        raise SettingError(
            f"these settings need about {format_bytes(need)} of memory to train, past the limit "
            f"of {format_bytes(limit)}; make the model or batch_size smaller, or raise the "
            f"limit on purpose with [scenario] memory_limit_gib (or tui-tfs train --memory-limit)",
            None)


def _data_keys(settings: Any) -> str:
    if getattr(settings, "pairs_file", ""):
        return "the pairs file's size"
    names = [n for n in ("train_size", "test_size", "max_len") if hasattr(settings, n)]
    return "/".join(names) if names else "the text file's size"


def _file_size(name: str) -> int:
    try:
        return Path(name).stat().st_size
    except (OSError, ValueError):
        return 0
