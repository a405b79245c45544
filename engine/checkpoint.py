"""Saving and loading models as safetensors files: weights, config, and resumable state.

A checkpoint is one safetensors file (a JSON header + raw arrays; no pickle, so loading a file
can never run code). It holds:

    tensors   every parameter under its dotted name ("decoder.blocks.0.ffn.fc1.w"), and,
              for resuming, each optimizer/trainer state array under "optimizer.<key>"
    metadata  "tui_tfs.format" = "1"           marks the file as ours
              "tui_tfs.config" = JSON          config.to_dict(): enough to rebuild the model
              "tui_tfs.step"   = "123"         training step, when given
              anything else                    the caller's extra_metadata (str -> str)

Writes are atomic: the bytes go to a temporary file in the same directory, are flushed and
fsynced, and then `os.replace` swaps it in, so a crash mid-save never leaves a half-written
checkpoint under the real name.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from .config import ConfigError, ModelConfig, config_from_dict

FORMAT_KEY = "tui_tfs.format"
FORMAT_VERSION = "1"
CONFIG_KEY = "tui_tfs.config"
STEP_KEY = "tui_tfs.step"
RESERVED_PREFIX = "tui_tfs."
OPTIMIZER_PREFIX = "optimizer."


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and what is wrong."""


@dataclass
class Checkpoint:
    """What a checkpoint file holds, decoded."""

    config: ModelConfig  # the model's config, validated
    state_dict: dict[str, np.ndarray]  # {param name: array}
    optimizer_state: dict[str, np.ndarray] | None = None  # {key: array}, None if not saved
    step: int | None = None  # training step at save time, None if not saved
    metadata: dict[str, str] = field(default_factory=dict)  # the caller's extra_metadata


def save_checkpoint(path: str | os.PathLike, model, extra_metadata: dict[str, str] | None = None,
                    optimizer_state: dict[str, np.ndarray] | None = None,
                    step: int | None = None) -> Path:
    """Write `model` (and optional resumable state) to `path` atomically; returns the path.

    `optimizer_state` is any flat {key: array} dict, e.g. `Optimizer.state_dict()` or
    `Trainer.state()`; it comes back unchanged as `Checkpoint.optimizer_state`.
    """
    path = Path(path)
    tensors = _tensors_to_save(model.state_dict(), optimizer_state)
    metadata = _metadata_to_save(model.config, extra_metadata, step)
    payload = safetensors.numpy.save(tensors, metadata=metadata)
    _write_atomically(path, payload)
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and check a checkpoint; any problem is one `CheckpointError` naming the file."""
    path = Path(path)
    metadata, tensors = _read_safetensors(path)
    if metadata.get(FORMAT_KEY) != FORMAT_VERSION:
        found = metadata.get(FORMAT_KEY)
        raise CheckpointError(
            f"{path}: a safetensors file, but not a tui-tfs checkpoint (metadata "
            f"{FORMAT_KEY!r} is {found!r}, expected {FORMAT_VERSION!r}); save it with "
            f"engine.checkpoint.save_checkpoint"
        )
    config = _decode_config(path, metadata.get(CONFIG_KEY))
    step = _decode_step(path, metadata.get(STEP_KEY))
    state = {k: v for k, v in tensors.items() if not k.startswith(OPTIMIZER_PREFIX)}
    optimizer = {k[len(OPTIMIZER_PREFIX):]: v for k, v in tensors.items()
                 if k.startswith(OPTIMIZER_PREFIX)}
    extra = {k: v for k, v in metadata.items() if not k.startswith(RESERVED_PREFIX)}
    return Checkpoint(config, state, optimizer or None, step, extra)


def model_from_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike = "<checkpoint>"):
    """Build the model the checkpoint's config describes and load its weights."""
    from .models import build_model  # lazy: models import layers; checkpoint stays light

    model = build_model(checkpoint.config)
    try:
        model.load_state_dict(checkpoint.state_dict)
    except ValueError as error:
        raise CheckpointError(
            f"{path}: weights do not fit the model its config describes: {error}") from error
    return model


def load_model(path: str | os.PathLike):
    """The model saved in `path`, rebuilt from its config, weights loaded."""
    return model_from_checkpoint(load_checkpoint(path), path)


# -- saving ---------------------------------------------------------------------------------
def _tensors_to_save(state: dict[str, np.ndarray],
                     optimizer_state: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    clashes = [name for name in state if name.startswith(OPTIMIZER_PREFIX)]
    if clashes:
        raise ValueError(f"parameter names {clashes[:3]} clash with the reserved prefix "
                         f"{OPTIMIZER_PREFIX!r}")
    # np.asarray(order="C"), not np.ascontiguousarray: the latter turns 0-d arrays into 1-d
    tensors = {name: np.asarray(array, order="C") for name, array in state.items()}
    for key, array in (optimizer_state or {}).items():
        if not isinstance(array, np.ndarray):
            raise ValueError(
                f"optimizer_state[{key!r}] must be a numpy array, got {type(array).__name__}; "
                f"wrap scalars as np.array(value)"
            )
        tensors[OPTIMIZER_PREFIX + key] = np.asarray(array, order="C")
    return tensors


def _metadata_to_save(config: ModelConfig, extra: dict[str, str] | None,
                      step: int | None) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for key, value in (extra or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"extra_metadata must map str to str; entry {key!r}: {value!r} is not")
        if key.startswith(RESERVED_PREFIX):
            raise ValueError(f"extra_metadata key {key!r} uses the reserved prefix "
                             f"{RESERVED_PREFIX!r}; rename it")
        metadata[key] = value
    metadata[FORMAT_KEY] = FORMAT_VERSION
    metadata[CONFIG_KEY] = json.dumps(config.to_dict(), sort_keys=True)
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"step must be an integer >= 0 or None, got {step!r}")
        metadata[STEP_KEY] = str(int(step))
    return metadata


def _write_atomically(path: Path, payload: bytes) -> None:
    """Temp file beside `path`, write, flush, fsync, then rename over `path` in one step."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        # leave nothing behind on failure (including Ctrl-C mid-write), then re-raise
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise


# -- loading --------------------------------------------------------------------------------
def _read_safetensors(path: Path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    if not path.exists():
        raise CheckpointError(f"{path}: no such file; check the path")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a regular file; "
                              f"give the path of a .safetensors checkpoint")
    try:
        with safetensors.safe_open(str(path), framework="np") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except safetensors.SafetensorError as error:
        raise CheckpointError(
            f"{path}: not a readable safetensors file (truncated or another format?): {error}"
        ) from error
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read: {error}") from error
    return metadata, tensors


def _decode_config(path: Path, text: str | None) -> ModelConfig:
    if text is None:
        raise CheckpointError(f"{path}: metadata has no {CONFIG_KEY!r} entry; the file is incomplete")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(
            f"{path}: metadata {CONFIG_KEY!r} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: metadata {CONFIG_KEY!r} must be a JSON object, "
                              f"got {type(data).__name__}")
    try:
        return config_from_dict(data)
    except (ConfigError, TypeError) as error:
        raise CheckpointError(f"{path}: the saved model config is invalid: {error}") from error


def _decode_step(path: Path, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError as error:
        raise CheckpointError(
            f"{path}: metadata {STEP_KEY!r} must be an integer, got {text!r}") from error
