"""What a scenario's data is made of: examples and splits, plus the seeded sampling they share.

Two shapes of data:

- `Example`s, pairs of text: what goes in and what should come out. A sequence-to-sequence task
  ("31415" -> "51413") and a language model with a prompt ("12+34=" -> "46") are both lists
  of examples; a plain language model over sentences has an empty source.
- `TextSplits`, one running text cut in two, for a character language model that reads
  windows of it.

Every split is made from a seed with NumPy's `default_rng`, so the same settings always give
the same data, and held-out examples are never in the training split when the task can
promise it (the generated tasks can; sentences drawn from a tiny language cannot, and say so).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


class DataError(ValueError):
    """Data settings that cannot produce a split; the message names the setting and the fix."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key  # the [data] setting at fault, when one is ("test_size"), for file errors


@dataclass(frozen=True)
class Example:
    """One item of a split: what goes in and what should come out."""

    source: str  # seq2seq: what the encoder reads; prompted LM: the prompt ("12+34="); else ""
    target: str  # what the model must write: "51413", "46", "the cat sat on the mat"


@dataclass
class ExampleSplits:
    """Training and held-out examples (held-out ones are what the metrics are measured on)."""

    train: list[Example]  # what the model learns from
    held_out: list[Example]  # never trained on (when the task can promise it); measured on
    disjoint: bool = True  # True when no held-out source appears in train


@dataclass
class TextSplits:
    """One running text cut in two at a line break: the start trains, the end is held out."""

    train: str  # the first (1 - held_out_fraction) of the text
    held_out: str  # the rest


def sample_unique(rng: np.random.Generator, draw: Callable[[np.random.Generator, int], list[str]],
                  count: int, exclude: set[str], space: int, what: str) -> list[str]:
    """`count` distinct strings from `draw(rng, k)` (k candidates at a time), none in `exclude`.

    `space` is how many distinct strings `draw` can produce; asking for more than exist (after
    the exclusions) is a DataError rather than a loop that never ends.
    """
    available = space - len(exclude)
    if count > available:
        raise DataError(f"{what}: asked for {count} distinct examples but only {available} exist")
    out: list[str] = []
    seen = set(exclude)
    # Rejection sampling in rounds; the bound only trips when the space is nearly exhausted.
    for _ in range(100):
        for item in draw(rng, max(64, 2 * (count - len(out)))):
            if len(out) == count:
                return out
            if item not in seen:
                seen.add(item)
                out.append(item)
        if len(out) == count:
            return out
    raise DataError(f"{what}: could not draw {count} distinct examples (only {len(out)}); "
                    f"ask for fewer or widen the range")


def split_list(rng: np.random.Generator, items: list[str], train_size: int, test_size: int,
               what: str) -> tuple[list[str], list[str]]:
    """Shuffle distinct `items` and take disjoint (train, held_out) lists of the given sizes."""
    if test_size + min(train_size, 1) > len(items):
        raise DataError(f"{what}: there are {len(items)} distinct items; test_size ({test_size}) "
                        f"leaves none to train on; lower test_size")
    order = rng.permutation(len(items))
    held_out = [items[i] for i in order[:test_size]]
    train = [items[i] for i in order[test_size:test_size + train_size]]
    return train, held_out


def split_text(text: str, held_out_fraction: float) -> TextSplits:
    """Cut at the first line break after (1 - fraction) of the text, so no line is split."""
    cut = int(len(text) * (1.0 - held_out_fraction))
    newline = text.find("\n", cut)
    cut = newline + 1 if newline != -1 else cut
    return TextSplits(train=text[:cut], held_out=text[cut:])
