"""Generating from the weights of a run while it trains: a private copy of them, taken
between two steps, so the worker goes on training the live model meanwhile.

A mixin of `TrainingController` (tui_tfs/training.py): it reads `lock`, `model`, `scenario`
and keeps its copy in `_gen_model`.
"""
from __future__ import annotations

from engine.maths.models import build_model
from scenarios import Completion, complete


class Generating:
    """`generation_model` and `generate` for TrainingController."""

    def generation_model(self):
        """A private copy of the current weights, taken between two steps, to generate from
        while the worker goes on training the live model."""
        with self.lock:
            config = self.model.config
            if self._gen_model is None or self._gen_model.config != config:
                self._gen_model = build_model(config)
            self._gen_model.load_state_dict(self.model.state_dict())
        return self._gen_model

    def generate(self, prompt: str, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, seed: int = 0, max_tokens: int = 48,
                 ascii_only: bool = False) -> Completion:
        """Sample from the current weights, with the odds of every choice. Raises
        scenarios.ScenarioError for a bad prompt."""
        return complete(self.generation_model(), self.scenario.tokenizer, self.scenario.layout,
                        prompt, max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                        top_p=top_p, seed=seed, ascii_only=ascii_only)
