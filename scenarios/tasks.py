"""The six built-in tasks: what each one asks of the model and how its data is made.

Each is a `Task` (scenarios/task.py: data settings, seeded splits, tokenizer, defaults that
converge on a 2-core machine in about a minute); `task_named` also finds the "pairs" task of
a teacher's own file (scenarios/pairs.py).

How each task is encoded (ids: <pad>=0, <s>=1, </s>=2, then the task's own tokens):

    reverse   encoder reads  3 1 4 1 5        decoder writes  <s> 5 1 4 1 3  -> 5 1 4 1 3 </s>
    sort      encoder reads  3 1 4 1 5        decoder writes  <s> 1 1 3 4 5  -> 1 1 3 4 5 </s>
    copy      encoder reads  how are you      decoder writes  <s> how are you -> how are you </s>
    addition  one sequence   <s> 1 2 + 3 4 = 4 6 </s>; the loss counts only the answer "4 6 </s>"
    tiny-lm   one sequence   <s> the cat sat on the mat </s>; every word is predicted
    char-lm   windows of the text, each character predicting the next: "It is a trut" -> "t is a truth"

Digits are single characters, so "12+34=" is six tokens and the model has to learn place value
itself; the answer is written most significant digit first, the way people write it.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from . import language
from .examples import DataError, Example, ExampleSplits, TextSplits, sample_unique, split_list, split_text
from .settings import AdditionSettings, DigitSettings, PhraseSettings, SentenceSettings, TextSettings
from .pairs import PAIRS
from .task import FAST_TRAIN, SMALL_MODEL, Task
from .tokenizers import CharTokenizer, Tokenizer, WordTokenizer

DIGITS = "0123456789"
SHIPPED_TEXT = "pride_and_prejudice.txt"  # scenarios/data/; provenance in data/README.md


# -- tasks ---------------------------------------------------------------------------------------
@dataclass
class DigitTask(Task):
    """reverse / sort: a digit string in, a rearrangement of it out."""

    rule: str = "reverse"  # "reverse" | "sort"

    def target_for(self, source: str) -> str | None:
        return source[::-1] if self.rule == "reverse" else "".join(sorted(source))

    def make_data(self, settings: DigitSettings) -> ExampleSplits:
        rng = np.random.default_rng(settings.seed)
        lo, hi = settings.min_len, settings.max_len
        # capped: past 10**20 strings no split can run out (a sum of 10**100000 took minutes)
        space = sum(10**n for n in range(lo, hi + 1)) if hi < 20 else 10**20

        def draw(r: np.random.Generator, k: int) -> list[str]:
            lengths = r.integers(lo, hi + 1, size=k)  # (k,)
            digits = r.integers(0, 10, size=(k, hi)).astype(np.uint8) + ord("0")  # (k, hi) ASCII
            return [row[:n].tobytes().decode("ascii") for row, n in zip(digits, lengths)]

        if settings.test_size + settings.train_size > space:
            raise DataError(f"train_size + test_size ({settings.train_size + settings.test_size}) is "
                            f"more than the {space} distinct digit strings of length {lo}..{hi}; "
                            f"lower train_size or raise max_len", key="train_size")
        held = sample_unique(rng, draw, settings.test_size, set(), space, "held-out inputs")
        train = sample_unique(rng, draw, settings.train_size, set(held), space, "training inputs")
        to_example = lambda s: Example(s, self.target_for(s))  # noqa: E731
        return ExampleSplits([to_example(s) for s in train], [to_example(s) for s in held])

    def make_tokenizer(self, settings: Any, data: Any) -> Tokenizer:
        return CharTokenizer.from_chars(DIGITS)


@dataclass
class CopyTask(Task):
    """copy: a phrase in, the same phrase out, word by word."""

    def target_for(self, source: str) -> str | None:
        return " ".join(source.split())

    def make_data(self, settings: PhraseSettings) -> ExampleSplits:
        rng = np.random.default_rng(settings.seed)
        if settings.text_file:
            phrases = list(dict.fromkeys(_lines(settings.text_file)))  # distinct, file order
        else:
            phrases = language.all_phrases()
        train, held = split_list(rng, phrases, settings.train_size, settings.test_size,
                                 "copy phrases")
        return ExampleSplits([Example(p, p) for p in train], [Example(p, p) for p in held])

    def make_tokenizer(self, settings: Any, data: ExampleSplits) -> Tokenizer:
        # Every word of the language, not only those in train: a held-out phrase may use a word
        # the split happened to leave out, and copying it is still well defined.
        texts = [e.source for e in data.train + data.held_out] if settings.text_file else language.all_phrases()
        return WordTokenizer.from_texts(texts)


@dataclass
class AdditionTask(Task):
    """addition: "12+34=" in, "46" out, by a decoder-only model continuing the prompt."""

    layout: ClassVar[str] = "prompted"

    def clean_input(self, text: str) -> str:
        text = "".join(text.split())
        return text if text.endswith("=") else text + "="

    def target_for(self, source: str) -> str | None:
        body = source.rstrip("=")
        left, plus, right = body.partition("+")
        if not plus or not left.isdigit() or not right.isdigit():
            return None
        return str(int(left) + int(right))

    def make_data(self, settings: AdditionSettings) -> ExampleSplits:
        rng = np.random.default_rng(settings.seed)
        n = 10**settings.digits
        space = n * n
        if settings.train_size + settings.test_size > space:
            raise DataError(f"train_size + test_size ({settings.train_size + settings.test_size}) is "
                            f"more than the {space} sums of {settings.digits}-digit numbers; lower "
                            f"train_size or raise digits", key="train_size")
        if space <= 4 * (settings.train_size + settings.test_size):
            picks = rng.permutation(space)[: settings.test_size + settings.train_size]
            codes = [int(c) for c in picks]
        else:
            draw = lambda r, k: [str(c) for c in r.integers(0, space, size=k)]  # noqa: E731
            held = sample_unique(rng, draw, settings.test_size, set(), space, "held-out sums")
            train = sample_unique(rng, draw, settings.train_size, set(held), space, "training sums")
            codes = [int(c) for c in held + train]
        examples = [Example(f"{c // n}+{c % n}=", str(c // n + c % n)) for c in codes]
        return ExampleSplits(examples[settings.test_size:], examples[: settings.test_size])

    def make_tokenizer(self, settings: Any, data: Any) -> Tokenizer:
        return CharTokenizer.from_chars(DIGITS + "+=")


@dataclass
class SentenceTask(Task):
    """tiny-lm: predict each next word of short sentences."""

    layout: ClassVar[str] = "prompted"  # with an empty prompt: every word is predicted
    has_answers: ClassVar[bool] = False

    def make_data(self, settings: SentenceSettings) -> ExampleSplits:
        rng = np.random.default_rng(settings.seed)
        if settings.text_file:
            lines = _lines(settings.text_file)
            if len(lines) <= settings.test_size:
                raise DataError(f"{settings.text_file} has {len(lines)} sentences; test_size "
                                f"({settings.test_size}) must leave some to train on: lower it",
                                key="test_size")
            order = rng.permutation(len(lines))
            held = [lines[i] for i in order[: settings.test_size]]
            train = [lines[i] for i in order[settings.test_size:]]
            return ExampleSplits([Example("", s) for s in train], [Example("", s) for s in held],
                                 disjoint=False)
        sentences, probs = zip(*language.sentence_distribution())
        p = np.asarray(probs)
        draw = lambda k: [sentences[i] for i in rng.choice(len(sentences), size=k, p=p)]  # noqa: E731
        held, train = draw(settings.test_size), draw(settings.train_size)
        # A language of 30 sentences cannot keep held-out sentences out of training: held-out
        # here means fresh samples, and the loss is compared with the language's entropy.
        return ExampleSplits([Example("", s) for s in train], [Example("", s) for s in held],
                             disjoint=False)

    def make_tokenizer(self, settings: Any, data: ExampleSplits) -> Tokenizer:
        if settings.text_file:
            return WordTokenizer.from_texts(e.target for e in data.train + data.held_out)
        return WordTokenizer.from_texts(s for s, _ in language.sentence_distribution())

    def entropy(self, settings: SentenceSettings) -> float | None:
        if settings.text_file:
            return None
        return language.entropy_per_token(language.sentence_distribution())


@dataclass
class CharTask(Task):
    """char-lm: predict each next character of a text."""

    layout: ClassVar[str] = "stream"
    has_answers: ClassVar[bool] = False

    def make_data(self, settings: TextSettings) -> TextSplits:
        text = read_text(settings.text_file)
        splits = split_text(text, settings.held_out_fraction)
        if len(splits.held_out) <= settings.block_size or len(splits.train) <= settings.block_size:
            raise DataError(f"the text ({len(text)} characters) is too short for block_size "
                            f"{settings.block_size} with held_out_fraction {settings.held_out_fraction}: "
                            f"use a longer text or a smaller block_size", key="block_size")
        return splits

    def make_tokenizer(self, settings: Any, data: TextSplits) -> Tokenizer:
        return CharTokenizer.from_chars(data.train + data.held_out)


def read_text(text_file: str) -> str:
    """The text of `text_file`, or the shipped text when it is ""; newlines normalised."""
    if text_file:
        raw = Path(text_file).read_text(encoding="utf-8")
    else:
        raw = resources.files("scenarios").joinpath("data", SHIPPED_TEXT).read_text(encoding="utf-8")
    return raw.replace("\r\n", "\n")


def _lines(text_file: str) -> list[str]:
    """Non-blank lines of a file, whitespace collapsed."""
    return [" ".join(line.split()) for line in read_text(text_file).splitlines() if line.strip()]


TASKS: dict[str, Task] = {}


def _register(task: Task) -> Task:
    TASKS[task.name] = task
    return task


_register(DigitTask(
    name="reverse", kind="seq2seq", rule="reverse",
    summary="Reverse a string of digits: 31415 -> 51413.",
    description=(
        "The encoder reads a string of two to eight digits; the decoder writes it backwards, one "
        "digit at a time, starting from <s> and stopping with </s>. No digit is hard to predict: "
        "the whole task is finding the right source position, so this is the cleanest place to "
        "watch cross-attention. Trained, its maps form an anti-diagonal: the first output digit "
        "looks at the last input digit, the second at the one before, and so on. Held-out strings "
        "never appear in training, so 100% exact match means the model learned the rule."
    ),
    settings_type=DigitSettings, explorer_inputs=("31415", "2718", "1234567", "90210"),
    model_defaults=SMALL_MODEL, train_defaults={**FAST_TRAIN, "steps": 1500, "batch_size": 64},
))
_register(DigitTask(
    name="sort", kind="seq2seq", rule="sort",
    summary="Sort a string of digits: 31415 -> 11345.",
    description=(
        "The encoder reads two to eight digits; the decoder writes the same digits in ascending "
        "order. Unlike reversal, where each output has one place to look, sorting needs the model "
        "to count: how many 0s, how many 1s, and where it is in writing them out. Watch the "
        "decoder's cross-attention spread over every copy of the digit it is about to write."
    ),
    settings_type=DigitSettings, explorer_inputs=("31415", "90817263", "5555", "2718"),
    # counting needs more examples per step than reversing: a batch of 128
    model_defaults=SMALL_MODEL, train_defaults={**FAST_TRAIN, "steps": 1500, "batch_size": 128},
))
_register(CopyTask(
    name="copy", kind="seq2seq",
    summary="Copy words one by one: how are you -> how are you.",
    description=(
        "The simplest sequence-to-sequence task: the output is the input. Each word is one token "
        "(a word-level tokenizer with <pad>, <s> and </s>), and the decoder is trained with "
        "teacher forcing: it always sees the true previous words, not its own guesses. Copying "
        "sounds trivial, but the model has to learn to find 'the word I am at' in the source "
        "through attention alone; held-out phrases it never saw are the proof that it did."
    ),
    settings_type=PhraseSettings, explorer_inputs=("how are you", "where is my blue car",
                                                   "we love the small dog"),
    model_defaults=SMALL_MODEL, train_defaults={**FAST_TRAIN, "steps": 800, "batch_size": 64},
))
_register(AdditionTask(
    name="addition", kind="lm",
    summary="Add: 12+34= -> 46, the answer continuing the prompt.",
    description=(
        "A decoder-only model reads '12+34=' one character at a time and continues it with the "
        "sum, then </s>. The loss only counts the answer: predicting the question would be "
        "guessing random digits. The answer is written the usual way, most significant digit "
        "first, so the first digit already depends on whether the units carry; the model must "
        "work that out before it writes anything. Held-out sums never appear in training."
    ),
    settings_type=AdditionSettings, explorer_inputs=("12+34=", "99+1=", "57+68=", "5+5="),
    model_defaults={**SMALL_MODEL, "d_model": 64, "d_ff": 128},
    train_defaults={**FAST_TRAIN, "steps": 4000, "batch_size": 64},
))
_register(SentenceTask(
    name="tiny-lm", kind="lm",
    summary="Next word: the cat sat on the ... mat (12 words).",
    description=(
        "A language of twelve words and thirty sentences like 'the cat sat on the mat'. Each "
        "sentence is chosen at random, so the next word is often a coin toss and no model can "
        "reach zero loss: the best possible is the language's entropy, shown beside the loss. "
        "One thing is learnable: cats lie on mats or beds, dogs on rugs or beds, birds in trees, "
        "so the last word depends on the animal four words back. Watch the last position's "
        "attention find it."
    ),
    settings_type=SentenceSettings, explorer_inputs=("the cat sat on the", "the bird slept under the",
                                                     "the dog"),
    model_defaults=SMALL_MODEL,
    train_defaults={**FAST_TRAIN, "steps": 600, "batch_size": 64, "warmup_steps": 50},
))
_register(CharTask(
    name="char-lm", kind="lm",
    summary="Write like Jane Austen, one character at a time.",
    description=(
        "A character-level language model on the first six chapters of Pride and Prejudice "
        "(1813, public domain). Every character is a token and the model learns to predict the "
        "next one from the 64 before it. Early on it babbles letters; then spaces fall between "
        "word-sized pieces; then common words ('the', 'of', 'Mr. Bennet') appear. Sampling with "
        "a temperature below 1 plays it safe (and repeats itself); above 1 it takes wilder guesses."
    ),
    settings_type=TextSettings, explorer_inputs=("It is a truth ", "Mr. Bennet", "\"My dear"),
    # Past ~1200 steps the model starts memorising its 38 KB of text: held-out loss turns up.
    model_defaults={**SMALL_MODEL, "d_model": 64, "d_ff": 256},
    train_defaults={**FAST_TRAIN, "steps": 1200, "batch_size": 32},
))


# A scenario file may also name "pairs": its data is the file's own, so it is no built-in
# scenario (scenarios/pairs.py).
FILE_TASK_NAMES: tuple[str, ...] = (*TASKS, "pairs")


def task_named(name: str) -> Task | None:
    """The task a scenario file names: a built-in one, or "pairs"; None if there is none."""
    if name == "pairs":
        return PAIRS
    return TASKS.get(name)
