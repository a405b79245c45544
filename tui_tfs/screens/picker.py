"""The scenario picker: the first screen. Built-in scenarios with description, model size and
an example; Enter opens the explorer; `o` opens a scenario file by its path."""
from __future__ import annotations

from dataclasses import fields

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from engine.config import ModelConfig
from scenarios.tasks import TASKS

from ..messages import ScenarioPicked
from ..widgets.footer import FittingFooter
from ..render import model_kind_label
from .dialogs import PromptScreen


def scenario_card(name: str) -> Text:
    """Description, model size and examples of a built-in scenario, without building its data."""
    task = TASKS[name]
    defaults = {f.name: f.default for f in fields(ModelConfig)}
    cfg = {**defaults, **task.model_defaults}
    kind = model_kind_label(task.kind)
    text = Text()
    text.append(f"{name}\n", style="bold")
    text.append(task.summary + "\n")
    text.append("model    ", style="bold")
    text.append(f"{kind}, {cfg['n_layers']} layers, d_model {cfg['d_model']}, "
                f"{cfg['n_heads']} heads, d_ff {cfg['d_ff']}\n")
    text.append("examples ", style="bold")
    text.append(" | ".join(repr(e) for e in task.explorer_inputs[:3]) + "\n\n")
    text.append(task.description.strip() + "\n")
    return text


class PickerScreen(Screen[None]):
    """Choose what to explore."""

    BINDINGS = [
        Binding("enter", "open", "Open scenario", show=True),
        Binding("o", "open_file", "Open file", show=True),
        Binding("t", "train", "Train", show=True, tooltip="Train the highlighted scenario"),
        Binding("question_mark", "app.help", "Help", show=True),
        Binding("q", "app.quit", "Quit", show=True),
    ]

    def compose(self) -> ComposeResult:
        yield Static("tui-tfs: pick a scenario to step through (Enter), or o for a file",
                     id="picker-title")
        with Horizontal(id="picker"):
            yield OptionList(*[Option(Text.assemble((name, "bold"),
                                                    f"  {model_kind_label(TASKS[name].kind)}"),
                                      id=name) for name in TASKS], id="scenarios")
            with VerticalScroll(id="card-scroll"):
                yield Static(id="card")
        yield FittingFooter()

    def on_resize(self) -> None:
        self.app.check_size()

    def on_mount(self) -> None:
        options = self.query_one("#scenarios", OptionList)
        options.highlighted = 0
        options.focus()
        self._show_card(options.get_option_at_index(0).id)

    def _show_card(self, name: str | None) -> None:
        if name in TASKS:
            self.query_one("#card", Static).update(scenario_card(name))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show_card(event.option.id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(ScenarioPicked(event.option.id))

    def action_open(self) -> None:
        options = self.query_one("#scenarios", OptionList)
        if options.highlighted is not None:
            self.post_message(ScenarioPicked(options.get_option_at_index(options.highlighted).id))

    def action_train(self) -> None:
        options = self.query_one("#scenarios", OptionList)
        if options.highlighted is not None:
            name = options.get_option_at_index(options.highlighted).id
            self.post_message(ScenarioPicked(name, train=True))

    def action_open_file(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self.post_message(ScenarioPicked(path.strip()))

        self.app.push_screen(PromptScreen("Scenario file (.toml) to open:", "my_task.toml"), chosen)
