"""A GPT-2 folder as something the explorer can trace: a language-model stream of BPE tokens.

The explorer asks a scenario for its name, examples, tokenizer, settings and batches. A GPT-2
folder has no task and no training data of its own, so this one traces text: its examples are
sentences of the shipped text, a typed prompt is one row (each token predicts the next), and a
"new batch" is windows of the shipped text. It is not a training scenario: `train_config` is
the default one, only so the loss is built the same way (no label smoothing).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from engine.maths.config import quote_value
from engine.trace.trace import Batch
from engine.training.train_config import TrainConfig

from .gpt2 import CONFIG_FILE, WEIGHTS_FILE, Gpt2, config_from_settings, open_gpt2, read_settings
from .overrides import ScenarioError

TEXT = Path(__file__).parent / "data" / "pride_and_prejudice.txt"
EXAMPLES = ("It is a truth universally acknowledged, that a single man in possession of a good "
            "fortune, must be in want of a wife.",
            "Mr. Bennet was so odd a mixture of quick parts, sarcastic humour, reserve, and "
            "caprice,",
            "The quick brown fox jumps over the lazy dog.")
WINDOW = 32  # tokens per row of a "new batch" (at most max_len)
MOST_FOLDERS = 500  # subfolders looked into for GPT-2 folders (a home directory has many)


@dataclass
class Gpt2Scenario:
    """What the explorer reads of a scenario, for an opened GPT-2 folder."""

    opened: Gpt2
    train_config: TrainConfig = field(default_factory=TrainConfig)
    layout = "stream"
    trainable = False  # traced only: no held-out split or metrics to train against

    @property
    def name(self) -> str:
        return self.opened.folder.name or str(self.opened.folder)

    @property
    def source(self) -> str:
        return str(self.opened.folder)

    @property
    def summary(self) -> str:
        c = self.model_config
        return (f"GPT-2 folder {self.opened.folder}: {c.n_layers} layers, width {c.d_model}, "
                f"{c.n_heads} heads, {c.vocab_size:,} BPE tokens")

    @property
    def tokenizer(self):
        return self.opened.tokenizer

    @property
    def model_config(self):
        return self.opened.model.config

    @cached_property
    def examples(self) -> tuple[str, ...]:
        """The example sentences, each cut to the model's max_len + 1 tokens."""
        keep = self.model_config.max_len + 1
        return tuple(self.tokenizer.decode(self.tokenizer.encode(text)[:keep]) for text in EXAMPLES)

    def build_model(self):
        return self.opened.model

    def batch_for(self, text: str) -> Batch:
        """One row: each token of `text` predicts the next. ScenarioError, with the fix, for
        text of fewer than two tokens or more than max_len + 1."""
        ids = np.asarray(self.tokenizer.encode(text), dtype=np.int64)
        if len(ids) < 2:
            raise ScenarioError("type at least two tokens: each one predicts the next")
        limit = self.model_config.max_len
        if len(ids) - 1 > limit:
            raise ScenarioError(f"{quote_value(text)} is {len(ids)} tokens but the model reads "
                                f"at most max_len={limit} + 1: shorten it")
        return Batch(src=None, tgt_in=ids[None, :-1], tgt_out=ids[None, 1:])

    @cached_property
    def _stream(self) -> np.ndarray:
        """The first 20,000 characters of the shipped text as token ids."""
        text = TEXT.read_text(encoding="utf-8")[:20_000]
        return np.asarray(self.tokenizer.encode(text), dtype=np.int64)

    def next_batch(self, rng: np.random.Generator, split: str = "train",
                   batch_size: int | None = None) -> Batch:
        """`batch_size` random windows of the shipped text (the split does not matter here)."""
        size = batch_size or 4
        block = min(WINDOW, self.model_config.max_len)
        starts = rng.integers(0, len(self._stream) - block - 1, size=size)  # (B,)
        rows = np.stack([self._stream[s:s + block + 1] for s in starts])  # (B, block+1)
        return Batch(src=None, tgt_in=rows[:, :-1], tgt_out=rows[:, 1:])


def open_gpt2_scenario(folder: str | Path, dtype: str = "float32") -> Gpt2Scenario:
    return Gpt2Scenario(open_gpt2(folder, dtype))


def find_gpt2_folders(where: str | Path = ".") -> list[Path]:
    """GPT-2 folders (config.json + model.safetensors) at `where` and in its direct
    subfolders, hidden ones left out; by name. Only file names are looked at."""
    root = Path(where)
    try:
        below = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    return [folder for folder in [root, *below[:MOST_FOLDERS]]
            if (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()]


def describe_gpt2_folder(folder: str | Path) -> str:
    """One line from config.json, without reading the weights: "2 layers, width 48, 4 heads,
    400 BPE tokens, 0.5 MB of weights", or what is wrong with the folder."""
    folder = Path(folder)
    try:
        c = config_from_settings(read_settings(folder), folder)
        size = (folder / WEIGHTS_FILE).stat().st_size
    except ScenarioError as error:
        return f"cannot open: {error}"
    except OSError as error:
        return f"cannot open: {folder / WEIGHTS_FILE}: {error.strerror}"
    return (f"{c.n_layers} layers, width {c.d_model}, {c.n_heads} heads, {c.vocab_size:,} BPE "
            f"tokens, {size / 1e6:,.1f} MB of weights")
