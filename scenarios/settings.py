"""The data settings of each task: the [data] table of a scenario file.

One dataclass per kind of data, a comment per field, and `validate()` raising a DataError
that names the setting (`key`) and the fix. Checked before any data is made.
"""
from __future__ import annotations

from dataclasses import dataclass

from .examples import DataError


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise DataError(f"{name} must be at least 1, got {value}", key=name)


def _seed(value: int) -> None:
    # NumPy takes only seeds >= 0; the model and training seeds stop at 2**63 too
    if not 0 <= value < 2**63:
        raise DataError(f"seed must be a whole number from 0 to 2**63-1, got {value}", key="seed")


@dataclass
class DigitSettings:
    """Random digit strings (reverse, sort)."""

    min_len: int = 2  # shortest input; at 1, all ten one-digit strings would land in held-out
    max_len: int = 8  # longest input, in digits
    train_size: int = 10000  # distinct training inputs
    test_size: int = 200  # distinct held-out inputs, none of them in training
    seed: int = 1234  # seeds the data (not the model: that is the training seed)

    def validate(self) -> None:
        _seed(self.seed)
        _positive("min_len", self.min_len)
        _positive("train_size", self.train_size)
        _positive("test_size", self.test_size)
        if self.max_len < self.min_len:
            raise DataError(f"max_len ({self.max_len}) must be >= min_len ({self.min_len})", key="max_len")


@dataclass
class PhraseSettings:
    """Phrases to copy: the built-in English phrases or one phrase per line of a file."""

    text_file: str = ""  # optional UTF-8 file, one phrase per line; "" = the built-in phrases
    train_size: int = 4000  # distinct training phrases (fewer if the file has fewer)
    test_size: int = 200  # distinct held-out phrases, none of them in training
    seed: int = 1234  # seeds the split

    def validate(self) -> None:
        _seed(self.seed)
        _positive("train_size", self.train_size)
        _positive("test_size", self.test_size)


@dataclass
class AdditionSettings:
    """a+b= with a and b drawn from 0 .. 10^digits - 1."""

    digits: int = 2  # largest number of digits in each operand
    train_size: int = 9000  # distinct training sums
    test_size: int = 500  # distinct held-out sums, none of them in training
    seed: int = 1234  # seeds the split

    def validate(self) -> None:
        _seed(self.seed)
        _positive("digits", self.digits)
        if self.digits > 6:
            raise DataError(f"digits must be at most 6 (that is already 10^12 sums), got {self.digits}",
                            key="digits")
        _positive("train_size", self.train_size)
        _positive("test_size", self.test_size)


@dataclass
class SentenceSettings:
    """Sentences for a word-level language model: the tiny built-in language or a file."""

    text_file: str = ""  # optional UTF-8 file, one sentence per line; "" = the built-in language
    train_size: int = 2000  # sentences sampled for training (built-in language only)
    test_size: int = 200  # held-out sentences (for a file: lines set aside)
    seed: int = 1234  # seeds the sampling / split

    def validate(self) -> None:
        _seed(self.seed)
        _positive("train_size", self.train_size)
        _positive("test_size", self.test_size)


@dataclass
class TextSettings:
    """A running text for a character-level language model."""

    text_file: str = ""  # UTF-8 text file; "" = the shipped Pride and Prejudice chapters
    block_size: int = 64  # characters of context the model reads (its max_len)
    held_out_fraction: float = 0.1  # the end of the text kept for measuring
    seed: int = 1234  # not used by the split (a cut), kept so every task has one

    def validate(self) -> None:
        _seed(self.seed)
        if self.block_size < 2:
            raise DataError(f"block_size must be at least 2, got {self.block_size}", key="block_size")
        if not 0.0 < self.held_out_fraction < 0.5:
            raise DataError(f"held_out_fraction must be between 0 and 0.5, got {self.held_out_fraction}",
                            key="held_out_fraction")
