"""The training screen's generation panel: a prompt, the sampling temperature, top-k, top-p.

A mixin of TrainingScreen: it reads the screen's controller, style and `prompt`,
`temperature`, `top_k`, `top_p` and `generated` fields, and shows the panel with
`action_view("tr-generate")`.
"""
from __future__ import annotations

from rich.markup import escape

from scenarios import ScenarioError

from .dialogs import PromptScreen

TOP_K = (None, 1, 3, 5, 10)
TOP_P = (None, 0.5, 0.9, 0.95)


class GenerationActions:
    """The `g`, `<`, `>`, `k` and `p` keys of the training screen."""

    def action_generate(self) -> None:
        examples = self.session.scenario.examples

        def chosen(text: str | None) -> None:
            if text is not None:
                self.prompt = text
                self._generate()

        self.app.push_screen(PromptScreen("Prompt (the model continues it, or writes its output):",
                                          examples[0] if examples else "",
                                          self.prompt or (examples[0] if examples else "")), chosen)

    def _generate(self) -> None:
        if self.prompt is None:
            self.notify("g types a prompt first", title="generate")
        else:
            try:
                self.generated = self.controller.generate(self.prompt, self.temperature,
                                                          self.top_k, self.top_p,
                                                          ascii_only=self.style.ascii)
            except (ScenarioError, ValueError) as error:
                self.notify(escape(str(error)), title="generate", severity="error", timeout=8)
        self.action_view("tr-generate")

    def action_temperature(self, factor: float) -> None:
        self.temperature = float(min(8.0, max(0.05, self.temperature * factor)))
        self._generate() if self.prompt is not None else self.action_view("tr-generate")

    def action_cycle_top_k(self) -> None:
        self.top_k = TOP_K[(TOP_K.index(self.top_k) + 1) % len(TOP_K)]
        self._generate() if self.prompt is not None else self.action_view("tr-generate")

    def action_cycle_top_p(self) -> None:
        self.top_p = TOP_P[(TOP_P.index(self.top_p) + 1) % len(TOP_P)]
        self._generate() if self.prompt is not None else self.action_view("tr-generate")
