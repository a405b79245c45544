"""Saving and loading models as safetensors files: weights, config, and resumable state.

A checkpoint is one safetensors file (a JSON header + raw arrays; no pickle, so loading a file
can never run code). It holds:

    tensors   every parameter under its dotted name ("decoder.blocks.0.ffn.fc1.w"), and,
              for resuming, each optimizer/trainer state array under "optimizer.<key>"
    metadata  "tui_tfs.format" = "1"           marks the file as ours
              "tui_tfs.config" = JSON          config.to_dict(): enough to rebuild the model
              "tui_tfs.step"   = "123"         training step, when given
              anything else                    the caller's extra_metadata (str -> str)

Writes are atomic: the bytes go to a temporary file in the same directory
(".NAME.<pid>.<random>.tmp"), are flushed and fsynced, and then `os.replace` swaps it in, so a
crash mid-save never leaves a half-written checkpoint under the real name. A process killed
mid-save (kill -9) cannot remove its temporary file; the next save to the same name removes
those whose process is gone. Only a new path or a regular file is ever replaced: a symlink,
a directory or a device node is refused. Weights or optimizer state holding NaN/Inf are
refused too, so a diverged run never overwrites a good checkpoint.

Loading checks everything a file carries before anything is built, with the rules a scenario
file obeys: the config's types and ranges, the size it describes (parameter count against the
arrays stored, memory against a limit), the weights' dtype (the config's float type; never
integer, bool or complex) and that they are finite, the optimizer state's dtypes and values.
Any problem is one `CheckpointError` naming the file, what is wrong and what to do.
"""
from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from ..maths.config import ConfigError, ModelConfig, config_from_dict, quote_value
from ..maths.sizes import DEFAULT_MEMORY_LIMIT, format_bytes, model_bytes, parameter_count

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
    nonfinite: list[str] = field(default_factory=list)  # weights holding NaN/Inf (only when
    #                                                     loaded with allow_nonfinite=True)


def save_checkpoint(path: str | os.PathLike, model, extra_metadata: dict[str, str] | None = None,
                    optimizer_state: dict[str, np.ndarray] | None = None,
                    step: int | None = None) -> Path:
    """Write `model` (and optional resumable state) to `path` atomically; returns the path.

    `optimizer_state` is any flat {key: array} dict, e.g. `Optimizer.state_dict()` or
    `Trainer.state()`; it comes back unchanged as `Checkpoint.optimizer_state`. Raises
    CheckpointError for NaN/Inf in what would be saved or a path that is not a regular file,
    OSError when the file cannot be written; either way the file at `path` is left as it was.
    """
    path = Path(path)
    check_writable_path(path)
    tensors = _tensors_to_save(model.state_dict(), optimizer_state)
    bad = [name for name, array in tensors.items() if not _finite(array)]
    if bad:
        raise CheckpointError(f"{path}: not saved: {_names(bad)} hold NaN or Inf (training "
                              f"diverged); the file at that path is left as it was")
    metadata = _metadata_to_save(model.config, extra_metadata, step)
    payload = safetensors.numpy.save(tensors, metadata=metadata)
    _write_atomically(path, payload)
    return path


def load_checkpoint(path: str | os.PathLike, allow_nonfinite: bool = False,
                    memory_limit: int = DEFAULT_MEMORY_LIMIT) -> Checkpoint:
    """Read and check a checkpoint; any problem is one `CheckpointError` naming the file.

    allow_nonfinite=True loads weights holding NaN/Inf (to look for where they came from)
    and lists them in `Checkpoint.nonfinite`; by default they are refused. `memory_limit`
    bounds the bytes the stored config may ask for.
    """
    path = Path(path)
    metadata, tensors = _read_safetensors(path)
    if metadata.get(FORMAT_KEY) != FORMAT_VERSION:
        found = metadata.get(FORMAT_KEY)
        raise CheckpointError(
            f"{path}: a safetensors file, but not a tui-tfs checkpoint (metadata "
            f"{FORMAT_KEY!r} is {quote_value(found)}, expected {FORMAT_VERSION!r}); save it "
            f"with engine.training.checkpoint.save_checkpoint"
        )
    config = _decode_config(path, metadata.get(CONFIG_KEY))
    step = _decode_step(path, metadata.get(STEP_KEY))
    state = {k: v for k, v in tensors.items() if not k.startswith(OPTIMIZER_PREFIX)}
    optimizer = {k[len(OPTIMIZER_PREFIX):]: v for k, v in tensors.items()
                 if k.startswith(OPTIMIZER_PREFIX)}
    nonfinite = _check_weights(path, config, state, memory_limit)
    if nonfinite and not allow_nonfinite:
        raise CheckpointError(f"{path}: the weights {_names(nonfinite)} hold NaN or Inf (the run "
                              f"diverged before it was saved); retrain with a lower lr, or open "
                              f"it in the explorer to see where the NaN starts")
    _check_optimizer_state(path, optimizer)
    extra = {k: v for k, v in metadata.items() if not k.startswith(RESERVED_PREFIX)}
    return Checkpoint(config, state, optimizer or None, step, extra, nonfinite)


def model_from_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike = "<checkpoint>"):
    """Build the model the checkpoint's config describes and load its weights."""
    from ..maths.models import build_model  # lazy: models import layers; checkpoint stays light

    checkpoint.config.validate()  # a bad config is a ConfigError of its own, not a weights error
    try:
        return build_model(checkpoint.config, checkpoint.state_dict)  # no random init
    except ValueError as error:
        raise CheckpointError(
            f"{path}: weights do not fit the model its config describes: {error}") from error


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


def check_writable_path(path: Path) -> None:
    """CheckpointError unless `path` is a new name or a regular file (not a symlink, a
    directory, a device node...): saving replaces what is there."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as error:  # e.g. a path under a regular file: NotADirectoryError
        raise CheckpointError(f"{path}: cannot be used as a checkpoint path: "
                              f"{error.strerror or error}; give a file path in a folder") from None
    if stat.S_ISLNK(info.st_mode):
        raise CheckpointError(f"{path} is a symbolic link; saving would replace the link, not "
                              f"its target: give the path of a regular file or a new one")
    if stat.S_ISDIR(info.st_mode):
        raise CheckpointError(f"{path} is a directory; give a file path such as "
                              f"{path / 'model.safetensors'}")
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"{path} is not a regular file (a device, a pipe or a socket); "
                              f"give the path of a regular file or a new one")


def temp_file_pattern(path: Path) -> re.Pattern:
    """Names of the temporary files a save to `path` makes: .NAME.<pid>.<random>.tmp."""
    return re.compile(re.escape(f".{path.name}.") + r"(?:(\d+)\.)?[A-Za-z0-9_]+\.tmp")


def remove_stale_temp_files(path: Path) -> list[Path]:
    """Delete temporary files of saves to `path` whose process is gone (killed mid-save);
    returns what was removed. Files of a save still running in another process stay."""
    directory = path.parent if str(path.parent) else Path(".")
    pattern = temp_file_pattern(path)
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or (match.group(1) and _process_alive(int(match.group(1)))):
            continue
        try:
            os.unlink(directory / name)
            removed.append(directory / name)
        except OSError:
            pass  # gone already, or not ours to remove
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # this process's own save (another thread) is not stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or not a pid we can ask about: leave it
    return True


def _write_atomically(path: Path, payload: bytes) -> None:
    """Temp file beside `path`, write, flush, fsync, then rename over `path` in one step."""
    directory = path.parent if str(path.parent) else Path(".")
    remove_stale_temp_files(path)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                     dir=directory)
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
    except (json.JSONDecodeError, RecursionError) as error:
        raise CheckpointError(
            f"{path}: metadata {CONFIG_KEY!r} is not valid JSON: {quote_value(str(error), 80)}"
        ) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: metadata {CONFIG_KEY!r} must be a JSON object, "
                              f"got {type(data).__name__}")
    try:
        return config_from_dict(data)
    except (ConfigError, TypeError) as error:
        raise CheckpointError(f"{path}: the saved model config is invalid: "
                              f"{quote_value(str(error), 200)[1:-1]}") from None


def _decode_step(path: Path, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        step = int(text)
    except ValueError:
        step = -1
    if not 0 <= step < 2**63:
        raise CheckpointError(
            f"{path}: metadata {STEP_KEY!r} must be a whole number >= 0, got {quote_value(text)}")
    return step


def _check_weights(path: Path, config: ModelConfig, state: dict[str, np.ndarray],
                   memory_limit: int) -> list[str]:
    """Size, count and dtype of the stored weights against the config; returns the names of
    the weights that hold NaN/Inf."""
    need = model_bytes(config)
    if need > memory_limit:
        raise CheckpointError(f"{path}: its config describes a model needing about "
                              f"{format_bytes(need)}, past the limit of {format_bytes(memory_limit)}; "
                              f"the file is damaged or not meant for this machine")
    stored = sum(int(array.size) for array in state.values())
    expected = parameter_count(config)
    if stored != expected:
        raise CheckpointError(f"{path}: it stores {stored:,} weights but its config describes a "
                              f"model of {expected:,}; the file is damaged (save it again)")
    wrong = [name for name, array in state.items() if array.dtype != config.np_dtype]
    if wrong:
        found = state[wrong[0]].dtype
        raise CheckpointError(f"{path}: the weights {_names(wrong)} are {found}, but its config "
                              f"says {config.dtype}; the file is damaged or not ours")
    return [name for name, array in state.items() if not _finite(array)]


def _check_optimizer_state(path: Path, state: dict[str, np.ndarray]) -> None:
    """Training state arrays hold real numbers (whether they fit a run, and are finite, is
    checked when a run resumes from them: eval and generate do not need them)."""
    for key, array in state.items():
        if array.dtype.kind not in "fiu":
            raise CheckpointError(f"{path}: training state {quote_value(key)} is {array.dtype}, "
                                  f"not a number type; the file is damaged (train afresh)")


def _finite(array: np.ndarray) -> bool:
    """True for integer arrays and float arrays without NaN/Inf."""
    array = np.asarray(array)
    if array.dtype.kind in "iub":
        return True
    if array.dtype.kind not in "fc":
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(array).all())


def _names(names: list[str], shown: int = 3) -> str:
    """"'a', 'b', 'c' and 4 more": a few names, each cut short, never a thousand."""
    text = ", ".join(quote_value(n) for n in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")
