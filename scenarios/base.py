"""A scenario: one task, ready to train and to explore.

`build_scenario("reverse")` gathers everything a teacher opens in one keystroke: the seeded
data splits, the tokenizer, the model and training settings, example inputs for the explorer.
Everything is checked here, before any model exists, so a bad setting is one message and
never a half-built model.

The scenario turns examples into the arrays a model reads (`next_batch`), and measures a model
on the held-out split (`evaluate`, `predictions`). Shapes: B batch, S source length, T target
length. Three layouts:

    pairs     (seq2seq)  src = ids(source)           tgt_in = <s> ids(target)
                                                     tgt_out = ids(target) </s>
    prompted  (lm)       seq = <s> ids(prompt) ids(target) </s>
                         tgt_in = seq[:-1], tgt_out = seq[1:] with the prompt's positions set
                         to <pad>, so the loss counts only the answer
    stream    (lm)       a window of T characters and the same window one character later
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.maths.config import ConfigError, DecoderOnlyConfig, EncoderDecoderConfig, ModelConfig, quote_value
from engine.maths.loss import CrossEntropyLoss
from engine.maths.batch import Batch
from engine.training.evaluation import evaluate
from engine.training.train_config import TrainConfig

from .examples import DataError, Example, ExampleSplits, TextSplits
from .limits import check_data, check_training, memory_limit
from .overrides import ScenarioError, SettingError, apply_overrides
from .predict import Prediction, predict
from .tasks import FILE_TASK_NAMES, Task, task_named
from .tokenizers import Tokenizer, TokenizerError

# Settings derived from the data; a file that sets them gets told why it cannot.
DERIVED_MODEL_FIELDS = {
    "vocab_size": "it is the tokenizer's vocabulary size",
    "pad_id": "<pad> is always token 0",
}

# Metadata keys a checkpoint carries so `generate`/`eval` can rebuild the scenario.
META_SOURCE = "scenario.source"  # built-in name, or the absolute path of a scenario file
META_NAME = "scenario.name"
META_TOKENIZER = "scenario.tokenizer"  # JSON of Tokenizer.to_dict()
META_LAYOUT = "scenario.layout"  # "pairs" | "prompted" | "stream"
META_TRAIN = "scenario.train_config"  # JSON of TrainConfig.to_dict(), for the record
META_DATA = "scenario.data_sha256"  # digest of both splits: a user's data file may change


@dataclass
class Scenario:
    """A task with its data, tokenizer and default settings."""

    name: str  # "reverse", or a scenario file's name
    task: Task  # what kind of problem, and how its data is made
    settings: Any  # the task's data settings (task.settings_type), validated
    tokenizer: Tokenizer  # text <-> ids
    data: ExampleSplits | TextSplits  # seeded train and held-out splits
    model_config: ModelConfig  # vocab_size, pad_id and max_len already fitted to the data
    train_config: TrainConfig  # default training settings
    summary: str  # one line, for `tui-tfs list`
    description: str  # a paragraph a student understands
    examples: tuple[str, ...]  # inputs the explorer offers first
    source: str  # what a checkpoint stores to rebuild this: built-in name or file path

    def __post_init__(self) -> None:
        # Encoded once: batches are then index-and-pad, with no tokenizing in the training loop.
        self._encoded = {split: self._encode_split(split) for split in ("train", "held_out")}

    # -- facts ----------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """"seq2seq" (encoder-decoder) or "lm" (decoder-only)."""
        return self.task.kind

    @property
    def layout(self) -> str:
        return self.task.layout

    @property
    def entropy(self) -> float | None:
        """Lowest possible held-out loss (nats/token), when known: 0 for tasks with one right
        answer, the language's entropy for a language model of a known language."""
        return self.task.entropy(self.settings)

    @property
    def primary_metric(self) -> str:
        """The held-out number that says how well a model does: exact match, or loss for LMs."""
        return "exact_match" if self.task.has_answers else "loss"

    def encode(self, text: str) -> list[int]:
        """Text -> token ids (no special tokens added); TokenizerError names an unknown token."""
        return self.tokenizer.encode(text)

    def decode(self, ids) -> str:
        """Token ids -> text, special tokens dropped."""
        return self.tokenizer.decode(ids)

    def build_model(self):
        from engine.maths.models import build_model

        return build_model(self.model_config)

    def checkpoint_metadata(self) -> dict[str, str]:
        """What `save_checkpoint(extra_metadata=...)` must store to rebuild this scenario."""
        return {
            META_SOURCE: self.source,
            META_NAME: self.name,
            META_TOKENIZER: json.dumps(self.tokenizer.to_dict()),
            META_LAYOUT: self.layout,
            META_TRAIN: json.dumps(self.train_config.to_dict()),
            META_DATA: self.data_digest(),
        }

    def data_digest(self) -> str:
        """sha256 of the train and held-out splits, in order: equal digests, equal splits."""
        if not hasattr(self, "_digest"):
            parts = [self.data.train, self.data.held_out]
            if self.layout != "stream":  # lists of examples; \x1f and \x1e never occur in them
                parts = ["\x1e".join(f"{e.source}\x1f{e.target}" for e in part) for part in parts]
            self._digest = hashlib.sha256("\x1d".join(parts).encode("utf-8")).hexdigest()
        return self._digest

    # -- arrays -----------------------------------------------------------------------------------
    def _encode_split(self, split: str) -> list[tuple[np.ndarray, ...]] | np.ndarray:
        part = getattr(self.data, split)
        if self.layout == "stream":
            return np.asarray(self.tokenizer.encode(part), dtype=np.int64)  # (N,)
        return [self.encode_example(e) for e in part]

    def encode_example(self, example: Example) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(src, tgt_in, tgt_out) for one example; src is empty for decoder-only layouts."""
        tok = self.tokenizer
        target = tok.encode(example.target)
        if self.layout == "pairs":
            src = np.asarray(tok.encode(example.source), dtype=np.int64)
            return src, np.asarray([tok.bos_id] + target), np.asarray(target + [tok.eos_id])
        prompt = tok.encode(example.source)
        seq = np.asarray([tok.bos_id] + prompt + target + [tok.eos_id], dtype=np.int64)
        tgt_out = seq[1:].copy()
        tgt_out[: len(prompt)] = tok.pad_id  # the prompt is given, not predicted
        return np.zeros(0, dtype=np.int64), seq[:-1], tgt_out

    def next_batch(self, rng: np.random.Generator, split: str = "train",
                   batch_size: int | None = None) -> Batch:
        """A random batch of `batch_size` (default: the training config's) drawn with `rng`."""
        size = batch_size or self.train_config.batch_size
        encoded = self._encoded[split]
        if self.layout == "stream":
            block = self.settings.block_size
            starts = rng.integers(0, len(encoded) - block, size=size)  # (B,)
            return self._windows(encoded, starts, block)
        rows = rng.integers(0, len(encoded), size=size)
        return self.collate([encoded[i] for i in rows])

    def eval_batches(self, limit: int | None = None, batch_size: int = 100) -> list[Batch]:
        """The held-out split as batches, in order (the same every call): for held-out loss."""
        encoded = self._encoded["held_out"]
        if self.layout == "stream":
            block = self.settings.block_size
            starts = np.arange(0, len(encoded) - block, block)[:limit]  # non-overlapping windows
            return [self._windows(encoded, starts[i:i + batch_size], block)
                    for i in range(0, len(starts), batch_size)]
        items = encoded[:limit]
        return [self.collate(items[i:i + batch_size]) for i in range(0, len(items), batch_size)]

    def _windows(self, ids: np.ndarray, starts: np.ndarray, block: int) -> Batch:
        index = starts[:, None] + np.arange(block)[None, :]  # (B,T)
        return Batch(src=None, tgt_in=ids[index], tgt_out=ids[index + 1])

    def collate(self, items: list[tuple[np.ndarray, ...]]) -> Batch:
        """Pad each column of (src, tgt_in, tgt_out) to the longest in the batch with <pad>."""
        src, tgt_in, tgt_out = (_pad([item[k] for item in items], self.tokenizer.pad_id)
                                for k in range(3))
        return Batch(src=src if self.layout == "pairs" else None, tgt_in=tgt_in, tgt_out=tgt_out)

    def batch_for(self, text: str) -> Batch:
        """A one-row batch for text the user typed (the explorer's input box).

        seq2seq: `text` is the source and the target is the task's answer to it (the model's
        own greedy output needs a model; the explorer can pass that as a second call).
        lm: `text` is the sequence (prompted: a prompt whose answer the task computes, if it can).
        ScenarioError, with the fix, for text that does not encode or is longer than max_len.
        """
        batch = self._batch_for(text)
        longest = max(batch.tgt_in.shape[1], 0 if batch.src is None else batch.src.shape[1])
        if longest > self.model_config.max_len:
            raise ScenarioError(f"{quote_value(text)} needs {longest} positions but the model reads at most "
                                f"max_len={self.model_config.max_len}: shorten it")
        return batch

    def _batch_for(self, text: str) -> Batch:
        try:
            if self.layout == "stream":
                ids = np.asarray(self.tokenizer.encode(text), dtype=np.int64)
                if len(ids) < 2:
                    raise ScenarioError("type at least two characters: each one predicts the next")
                return Batch(src=None, tgt_in=ids[None, :-1], tgt_out=ids[None, 1:])
            if not self.task.has_answers:
                # a sentence, maybe unfinished: each word predicts the next; what follows the
                # last word is unknown, so that prediction is shown but not scored (<pad>)
                ids = [self.tokenizer.bos_id] + self.tokenizer.encode(text)
                tgt_out = ids[1:] + [self.tokenizer.pad_id]
                return Batch(src=None, tgt_in=np.asarray([ids]), tgt_out=np.asarray([tgt_out]))
            text = self.task.clean_input(text)
            answer = self.task.target_for(text)
            if answer is None:  # a task with no rule (pairs): the data's answer, if it has one
                answer = self._answers().get(text)
            example = Example(text, answer if answer is not None else "")
            return self.collate([self.encode_example(example)])
        except TokenizerError as error:
            raise ScenarioError(str(error)) from None

    def _answers(self) -> dict[str, str]:
        """source -> target over both splits (built on first use)."""
        if not hasattr(self, "_answer_of"):
            self._answer_of = {e.source: e.target for e in self.data.train + self.data.held_out}
        return self._answer_of

    # -- measuring -------------------------------------------------------------------------------
    def evaluate(self, model, n: int | None = None) -> dict[str, float]:
        """Held-out metrics: loss and perplexity always; token accuracy and exact match for tasks
        with one right answer (decoded greedily, with no help from the target); the entropy of
        the language when it is known."""
        n = n or self.task.eval_size
        loss, tf_accuracy = held_out_loss(model, self.eval_batches(limit=n))
        metrics = {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}
        if self.task.has_answers:
            preds = self.predictions(model, n)
            hits = sum(_token_hits(p.target_tokens, p.output_tokens) for p in preds)
            total = sum(max(len(p.target_tokens), len(p.output_tokens)) + 1 for p in preds)
            metrics["token_accuracy"] = hits / total
            metrics["exact_match"] = sum(p.correct for p in preds) / len(preds)
        else:
            metrics["token_accuracy"] = tf_accuracy  # next-token argmax, teacher forced
            if self.entropy is not None:
                metrics["entropy"] = self.entropy  # the language's (tasks with answers: 0)
        return metrics

    def predictions(self, model, n: int = 10) -> list[Prediction]:
        """The first `n` held-out examples with what the model makes of them (in eval mode;
        the model's train/eval mode is restored after)."""
        return predict(self, model, n)


def held_out_loss(model, batches: list[Batch]) -> tuple[float, float]:
    """(mean cross-entropy in nats/token, next-token accuracy) without label smoothing."""
    return evaluate(model, batches, CrossEntropyLoss(model.config.pad_id, 0.0))


def _token_hits(target: list[str], output: list[str]) -> int:
    """Positions where output agrees with target, plus 1 if both end at the same place (</s>)."""
    same = sum(a == b for a, b in zip(target, output))
    return same + (len(target) == len(output))


def _pad(rows: list[np.ndarray], pad_id: int) -> np.ndarray:
    width = max(1, max(len(r) for r in rows))
    out = np.full((len(rows), width), pad_id, dtype=np.int64)  # (B, longest)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


# -- building -------------------------------------------------------------------------------------
def build_scenario(task: str, *, data: dict[str, Any] | None = None,
                   model: dict[str, Any] | None = None, train: dict[str, Any] | None = None,
                   name: str | None = None, summary: str | None = None,
                   description: str | None = None, examples: list[str] | None = None,
                   source: str | None = None, memory_limit_gib: float | None = None) -> Scenario:
    """A scenario for `task` with optional overrides; raises ScenarioError naming the key.

    What the settings ask for is estimated before the data or the model is made, and refused
    past `memory_limit_gib` (default: scenarios.limits.memory_limit())."""
    spec = task_named(task) if isinstance(task, str) else None
    if spec is None:
        raise SettingError(f"scenario.task must be one of {', '.join(FILE_TASK_NAMES)}; got "
                           f"{quote_value(task)}", "scenario.task")
    limit = memory_limit(memory_limit_gib)
    settings = apply_overrides(spec.settings_type(), data or {}, "data")
    try:
        settings.validate()
        check_data(settings, limit)
        splits = spec.make_data(settings)
        tokenizer = spec.make_tokenizer(settings, splits)
    except DataError as error:
        raise ScenarioError(str(error), f"data.{error.key}" if error.key else None) from None
    except (TokenizerError, UnicodeDecodeError, OSError) as error:
        raise ScenarioError(f"data: {error}", "data.text_file") from None

    config_cls = EncoderDecoderConfig if spec.kind == "seq2seq" else DecoderOnlyConfig
    needed = _longest_sequence(spec, settings, splits, tokenizer)
    # Room past the longest training sequence lets a student type a longer input and watch
    # the model fail to generalise; sinusoidal positions cost nothing for unused places.
    room = needed if spec.layout == "stream" else needed + 8
    defaults = config_cls(**{**spec.model_defaults, "vocab_size": tokenizer.vocab_size, "pad_id": 0,
                             "max_len": room})
    model_config = apply_overrides(defaults, model or {}, "model", DERIVED_MODEL_FIELDS)
    if model_config.max_len < needed:
        raise SettingError(f"model.max_len ({model_config.max_len}) is shorter than the longest "
                           f"sequence in the data ({needed} tokens); raise it to at least {needed} "
                           f"or remove it", "model.max_len")
    _validate(model_config, "model")

    train = dict(train or {})
    default_warmup = spec.train_defaults.get("warmup_steps", 0)
    steps = train.get("steps")
    if isinstance(steps, int) and "warmup_steps" not in train and 0 < steps <= default_warmup:
        train["warmup_steps"] = steps // 10  # a short run keeps the warmup's share, not its length
    train_config = apply_overrides(TrainConfig(**spec.train_defaults), train, "train")
    _validate(train_config, "train")
    check_training(settings, model_config, train_config, needed,
                   needed if spec.layout == "pairs" else 0, limit)

    for text in examples or ():
        if not isinstance(text, str):
            raise SettingError(f"scenario.examples must be a list of strings; "
                               f"{quote_value(text)} is not", "scenario.examples")
    scenario = Scenario(
        name=name or spec.name, task=spec, settings=settings, tokenizer=tokenizer, data=splits,
        model_config=model_config, train_config=train_config,
        summary=summary or spec.summary, description=description or spec.description,
        examples=tuple(examples) if examples else spec.explorer_inputs, source=source or spec.name)
    # Every offered input encodes and fits max_len. The user's own examples must; the task's
    # are replaced by held-out ones when one of them does not (a user's text file, a small
    # max_len) or the task has none (pairs: the data is the file's), and those fit.
    if not examples and not (scenario.examples
                             and all(_usable(scenario, text) for text in scenario.examples)):
        scenario.examples = _examples_from_data(spec, splits, model_config.max_len)
    for text in scenario.examples:
        try:
            scenario.batch_for(text)
        except ScenarioError as error:
            fix = " or raise model.max_len" if "max_len" in str(error) else ""
            raise SettingError(f"scenario.examples: {quote_value(text)} cannot be used: "
                               f"{error}{fix}", "scenario.examples") from None
    return scenario


def _usable(scenario: Scenario, text: str) -> bool:
    try:
        scenario.batch_for(text)
    except ScenarioError:
        return False
    return True


def _examples_from_data(spec: Task, splits: Any, max_len: int) -> tuple[str, ...]:
    """Three explorer inputs taken from the held-out data: the start of a line or sentence
    (a stream's cut to max_len + 1 characters: its window is one shorter than the text)."""
    if spec.layout == "stream":
        size = min(16, max_len + 1)
        lines = [line for line in splits.held_out.splitlines() if len(line.strip()) >= 2]
        return tuple(line[:size] for line in lines[:3]) or (splits.held_out[:size],)
    if spec.has_answers:
        return tuple(e.source for e in splits.held_out[:3])
    return tuple(" ".join(e.target.split()[:3]) for e in splits.held_out[:3])


def _longest_sequence(spec: Task, settings: Any, splits: Any, tokenizer: Tokenizer) -> int:
    """The longest input any layer sees, in tokens: the model's minimum max_len."""
    if spec.layout == "stream":
        return settings.block_size
    examples = splits.train + splits.held_out
    # Lengths in tokens without building id lists: a char is a token, a word is a token.
    length = len if tokenizer.kind == "char" else (lambda text: len(text.split()))
    if spec.layout == "pairs":
        return max(max(length(e.source), length(e.target) + 1) for e in examples)
    return max(length(e.source) + length(e.target) + 1 for e in examples)


def _validate(config: Any, section: str) -> None:
    """config.validate(), with the ConfigError's field turned into a dotted key."""
    try:
        config.validate()
    except ConfigError as error:
        message = str(error)  # starts with the field it is about, when there is one
        key = f"{section}.{error.field}" if error.field else None
        raise SettingError(f"{section}.{message}" if key else f"{section}: {message}", key) from None
