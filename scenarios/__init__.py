"""Scenarios: tasks a teacher opens in one keystroke.

    from scenarios import load_scenario, BUILTIN
    scenario = load_scenario("reverse")          # a built-in, by name
    scenario = load_scenario("my_task.toml")     # or a scenario file, by path
    model = scenario.build_model()
    batch = scenario.next_batch(rng)             # engine.maths.batch.Batch
    scenario.evaluate(model)                     # {"exact_match": 1.0, "loss": ...}

Exports: `BUILTIN` (name -> one-line summary, in display order), `load_scenario`,
`build_scenario`, `Scenario`, `Prediction`, `ScenarioError`, `ScenarioFileError`, the
tokenizers, and `complete` (generation from a prompt).
"""
from __future__ import annotations

from pathlib import Path

from .base import Scenario, build_scenario
from .files import ScenarioFileError, load_scenario_file
from .overrides import ScenarioError
from .predict import Completion, Prediction, complete
from .tasks import TASKS
from .tokenizers import CharTokenizer, Tokenizer, TokenizerError, WordTokenizer, tokenizer_from_dict

BUILTIN: dict[str, str] = {name: task.summary for name, task in TASKS.items()}


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name, or a scenario file by path (anything ending in .toml or
    naming an existing file). Raises ScenarioError / ScenarioFileError with the fix."""
    text = str(name_or_path)
    if text in TASKS:
        return build_scenario(text)
    if text.endswith(".toml") or Path(text).exists():
        return load_scenario_file(text)
    raise ScenarioError(f"no scenario named {text!r}; built-in scenarios are {', '.join(TASKS)}, "
                        f"or give the path of a .toml scenario file")


__all__ = [
    "BUILTIN", "CharTokenizer", "Completion", "Prediction", "Scenario", "ScenarioError",
    "ScenarioFileError", "Tokenizer", "TokenizerError", "WordTokenizer", "build_scenario",
    "complete", "load_scenario", "load_scenario_file", "tokenizer_from_dict",
]
