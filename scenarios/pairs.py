"""Pairs files: a teacher's own sequence-to-sequence task, one example a line.

A scenario file names the task "pairs" and a file of examples, read relative to it:

    [scenario]
    task = "pairs"
    [data]
    pairs_file = "dates.tsv"    # or a .jsonl file
    tokens = "char"             # "char": every character is a token; "word": words between spaces

Two formats, chosen by the file's ending:

    dates.tsv     input<TAB>output, one pair a line:      2024-03-07<TAB>7 March 2024
    dates.jsonl   one JSON object a line (other keys are ignored):
                  {"input": "2024-03-07", "output": "7 March 2024"}

Blank lines are skipped; spaces around each side are dropped (with word tokens, runs of
spaces inside count as one). A pair listed twice is kept once; one input with two different
outputs is a mistake (a model can learn one answer per input). The vocabulary is every
character (or word) of the file after the special tokens <pad>, <s>, </s>, and the pairs are
shuffled with the seed and cut into train and held-out, so no held-out input is trained on.

The file is only read as text (json.loads for JSONL): nothing in it can run code. A bad line
is a DataError naming the file, the line and the fix; up to MAX_REPORTED bad lines are listed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .examples import DataError, Example, ExampleSplits
from .settings import _seed
from .task import FAST_TRAIN, SMALL_MODEL, Task
from .tokenizers import SPECIALS, UNK, CharTokenizer, Tokenizer, WordTokenizer

TOKEN_KINDS = ("char", "word")
MAX_REPORTED = 5  # bad lines listed in one message; the rest are counted
KEY = "pairs_file"  # the [data] setting every file error points at


@dataclass
class PairsSettings:
    """The [data] table of a "pairs" scenario."""

    pairs_file: str = ""  # TSV (input<TAB>output) or .jsonl file; relative to the scenario file
    tokens: str = "char"  # "char" | "word": what one token of the inputs and outputs is
    max_len: int = 64  # longest input or output, in tokens; a longer line is reported
    held_out_fraction: float = 0.1  # share of the pairs kept for measuring (at least one)
    seed: int = 1234  # seeds the shuffle before the split

    def validate(self) -> None:
        if not self.pairs_file:
            raise DataError('pairs_file is missing; add pairs_file = "my_pairs.tsv" under [data] '
                            "(one input<TAB>output a line, read from the scenario file's folder)",
                            key=KEY)
        if self.tokens not in TOKEN_KINDS:
            raise DataError(f'tokens must be "char" or "word", got {self.tokens!r}', key="tokens")
        if self.max_len < 1:
            raise DataError(f"max_len must be at least 1, got {self.max_len}", key="max_len")
        if not 0.0 < self.held_out_fraction < 1.0:
            raise DataError(f"held_out_fraction must be between 0 and 1, got {self.held_out_fraction}",
                            key="held_out_fraction")
        _seed(self.seed)


# -- reading -------------------------------------------------------------------------------------
def read_pairs(settings: PairsSettings) -> list[Example]:
    """The distinct pairs of the file, in file order; DataError naming each bad line."""
    path = Path(settings.pairs_file)
    name = path.name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; relative paths are read from the scenario "
                        "file's folder", key=KEY) from None
    except OSError as error:
        raise DataError(f"{path} cannot be read: {error.strerror or error}", key=KEY) from None
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")  # a byte-order mark is not the input
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(f"{name} line {line}: not UTF-8 text ({error.reason} at byte "
                        f"{error.start}); save the file as UTF-8", key=KEY) from None
    parse = _parse_json_line if path.suffix.lower() == ".jsonl" else _parse_tab_line
    pairs: list[tuple[int, str, str]] = []  # (line number, input, output)
    problems: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            source, target = parse(line)
            pairs.append((number, *_checked(source, target, settings)))
        except ValueError as problem:
            problems.append(f"line {number}: {problem}")
    if not problems:
        examples, problems = _distinct(pairs)
    if problems:
        more = len(problems) - MAX_REPORTED
        listed = "; ".join(problems[:MAX_REPORTED]) + (f"; and {more} more" if more > 0 else "")
        raise DataError(f"{name}: {listed}", key=KEY)
    return examples


def _parse_tab_line(line: str) -> tuple[str, str]:
    tabs = line.count("\t")
    if tabs == 0:
        raise ValueError("no tab; write the input, one tab, then the output")
    if tabs > 1:
        raise ValueError(f"{tabs} tabs; a line holds one input and one output separated by one tab")
    source, target = line.split("\t")
    return source, target


def _parse_json_line(line: str) -> tuple[str, str]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error.msg} at column {error.colno}); write one "
                         'object a line, like {"input": "abc", "output": "cba"}') from None
    if not isinstance(item, dict):
        raise ValueError(f'a JSON {type(item).__name__} where an object {{"input": ..., '
                         '"output": ...} belongs')
    for key in ("input", "output"):
        if key not in item:
            raise ValueError(f'no "{key}" key; each object needs "input" and "output"')
        if not isinstance(item[key], str):
            raise ValueError(f'"{key}" must be a string in quotes, not {item[key]!r}')
    return item["input"], item["output"]


def _checked(source: str, target: str, settings: PairsSettings) -> tuple[str, str]:
    """Both sides cleaned as the tokenizer will read them; ValueError saying what is wrong."""
    sides = []
    for side, text in (("input", source), ("output", target)):
        text = " ".join(text.split()) if settings.tokens == "word" else text.strip()
        if not text:
            raise ValueError(f"the {side} is empty; give every line an input and an output")
        tokens = text.split() if settings.tokens == "word" else list(text)
        if len(tokens) > settings.max_len:
            unit = "words" if settings.tokens == "word" else "characters"
            raise ValueError(f"the {side} is {len(tokens)} {unit}, longer than data.max_len "
                             f"({settings.max_len}); shorten it or raise max_len")
        special = [t for t in tokens if t in SPECIALS + (UNK,)]
        if settings.tokens == "word" and special:
            raise ValueError(f"the {side} uses {special[0]!r}, a special token; rename that word")
        sides.append(text)
    return sides[0], sides[1]


def _distinct(pairs: list[tuple[int, str, str]]) -> tuple[list[Example], list[str]]:
    """Each pair once; an input given two different outputs is a problem naming both lines."""
    first: dict[str, tuple[int, str]] = {}
    examples, problems = [], []
    for number, source, target in pairs:
        if source not in first:
            first[source] = (number, target)
            examples.append(Example(source, target))
        elif first[source][1] != target:
            earlier, answer = first[source]
            problems.append(f"line {number}: the input {source!r} already has the output "
                            f"{answer!r} on line {earlier}; a model learns one output per input: "
                            "keep one of the two lines")
    return examples, problems


def split_pairs(examples: list[Example], settings: PairsSettings, name: str) -> ExampleSplits:
    """Shuffle with the seed; the first held_out_fraction (at least one) is held out."""
    held = max(1, round(len(examples) * settings.held_out_fraction))
    if len(examples) - held < 1:
        raise DataError(f"{name} has {len(examples)} distinct pair(s): too few to split into train "
                        "and held-out; add pairs (a model needs hundreds to learn a rule)", key=KEY)
    order = np.random.default_rng(settings.seed).permutation(len(examples))
    return ExampleSplits([examples[i] for i in order[held:]], [examples[i] for i in order[:held]])


# -- the task --------------------------------------------------------------------------------------
@dataclass
class PairsTask(Task):
    """pairs: the scenario file's own input -> output examples, for an encoder-decoder."""

    def make_data(self, settings: PairsSettings) -> ExampleSplits:
        return split_pairs(read_pairs(settings), settings, Path(settings.pairs_file).name)

    def make_tokenizer(self, settings: PairsSettings, data: ExampleSplits) -> Tokenizer:
        texts = [text for e in data.train + data.held_out for text in (e.source, e.target)]
        if settings.tokens == "word":
            return WordTokenizer.from_texts(texts)
        return CharTokenizer.from_chars("".join(texts))

    def clean_input(self, text: str) -> str:
        return text.strip()


PAIRS = PairsTask(
    name="pairs", kind="seq2seq",
    summary="Your own pairs: input -> output, one a line of a file.",
    description=(
        "An encoder-decoder learns the examples of a pairs file: the encoder reads the input, "
        "the decoder writes the output one token at a time, starting from <s> and stopping with "
        "</s>. Some of the pairs (held_out_fraction, a tenth by default) are held out and never "
        "trained on, so exact match on them says whether the model learned the rule behind the "
        "pairs or only memorised them."
    ),
    settings_type=PairsSettings, explorer_inputs=(),
    model_defaults=SMALL_MODEL, train_defaults={**FAST_TRAIN, "steps": 1500, "batch_size": 64},
)
