"""What a task is: the base class every task builds on, and the defaults they share.

A task knows its data settings (a dataclass; a scenario file's [data] table overrides them),
how to make seeded train and held-out splits from them, its tokenizer, and the model and
training settings that make it converge on a 2-core machine in about a minute. The built-in
tasks are in scenarios/tasks.py; a teacher's pairs file is scenarios/pairs.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from .examples import ExampleSplits, TextSplits
from .tokenizers import Tokenizer

# Defaults measured on a 2-core machine (see tests/scenarios/test_convergence.py): small models,
# Adam at a high peak rate that a cosine schedule anneals, so the last step is a calm one.
SMALL_MODEL = {"d_model": 32, "n_heads": 4, "d_ff": 64, "n_layers": 2}
FAST_TRAIN = {"optimizer": "adam", "lr": 3e-3, "schedule": "cosine", "warmup_steps": 100}


@dataclass
class Task:
    """A kind of problem: its data, its tokenizer and its defaults."""

    name: str  # registry name, "reverse"
    kind: str  # "seq2seq" (encoder-decoder) | "lm" (decoder-only)
    summary: str  # one line for `tui-tfs list`
    description: str  # a paragraph a student understands
    settings_type: type  # dataclass of the [data] settings
    explorer_inputs: tuple[str, ...]  # inputs the explorer offers first
    model_defaults: dict[str, Any] = field(default_factory=dict)  # ModelConfig field -> value
    train_defaults: dict[str, Any] = field(default_factory=dict)  # TrainConfig field -> value
    eval_size: int = 200  # held-out examples evaluate() uses by default

    layout: ClassVar[str] = "pairs"  # "pairs" | "prompted" | "stream": how examples become arrays
    has_answers: ClassVar[bool] = True  # one right output per example (else: a language model)

    def make_data(self, settings: Any) -> ExampleSplits | TextSplits:
        raise NotImplementedError

    def make_tokenizer(self, settings: Any, data: ExampleSplits | TextSplits) -> Tokenizer:
        raise NotImplementedError

    def clean_input(self, text: str) -> str:
        """What the user typed, made into a source the task expects (addition adds the "=")."""
        return text

    def target_for(self, source: str) -> str | None:
        """The right answer for a source the user typed, if the task can compute it."""
        return None

    def entropy(self, settings: Any) -> float | None:
        """Lowest possible held-out loss in nats per token, when it is known: 0 for a task
        whose input determines its one right answer."""
        return 0.0 if self.has_answers else None
