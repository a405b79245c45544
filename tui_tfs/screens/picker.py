"""The scenario picker: the first screen. Built-in scenarios with description, model size and
an example, then the checkpoints found in ./checkpoints/ (scenario, step, held-out metric),
then the GPT-2 folders in the current directory and its subfolders (and any opened before).
Enter opens the explorer; `t` the training screen; `o` opens a scenario file, a checkpoint or
a GPT-2 folder by its path. Scenarios opened before are marked (open, trained, saved):
opening one again returns to where it was left, trained weights and all (the app keeps every
session)."""
from __future__ import annotations

import os
import time
from dataclasses import fields
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from engine.maths.config import ModelConfig
from scenarios.gpt2_scenario import Gpt2Scenario, describe_gpt2_folder, find_gpt2_folders
from scenarios.tasks import TASKS

from ..checkpoints import CHECKPOINT_DIR, CheckpointInfo, list_checkpoints
from ..messages import ScenarioPicked
from ..widgets.footer import FittingFooter
from ..render import model_kind_label
from ..session import source_key
from .dialogs import PromptScreen

HEADING = "-checkpoints"  # the id of the checkpoints' heading (disabled: not a choice)
GPT2_HEADING = "-gpt2"  # the id of the GPT-2 folders' heading
HEADINGS = (HEADING, GPT2_HEADING)


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


def checkpoint_card(info: CheckpointInfo) -> Text:
    """What a checkpoint holds, from its header: scenario, step, metrics, model, file."""
    text = Text()
    text.append(f"{info.path.name}\n", style="bold")
    text.append(f"a checkpoint of {info.scenario}\n")
    text.append("step     ", style="bold")
    text.append("not stored\n" if info.step is None else f"{info.step}\n")
    text.append("held-out ", style="bold")
    shown = {"exact_match": "exact {:.1%}", "token_accuracy": "tokens {:.1%}",
             "loss": "loss {:.4f}", "perplexity": "perplexity {:.3f}"}
    parts = [form.format(info.metrics[k]) for k, form in shown.items() if k in info.metrics]
    text.append((", ".join(parts) or "not stored (saved before its first evaluation)") + "\n")
    cfg = info.config
    if cfg:
        text.append("model    ", style="bold")
        text.append(f"{model_kind_label(cfg.get('kind', '?'))}, {cfg.get('n_layers', '?')} layers, "
                    f"d_model {cfg.get('d_model', '?')}, {cfg.get('n_heads', '?')} heads\n")
    text.append("saved    ", style="bold")
    text.append(time.strftime("%Y-%m-%d %H:%M", time.localtime(info.mtime)) + "\n")
    text.append("file     ", style="bold")
    text.append(f"{info.path}\n\n")
    text.append("Enter explores the trained model; t goes on training it from its step, with "
                "its optimizer state. The training screen's w saves back to this file.\n")
    return text


def gpt2_card(folder: str, about: str) -> Text:
    """A GPT-2 folder: what its config.json says (`about`), and what opening it gives."""
    text = Text()
    text.append(f"{Path(folder).name}\n", style="bold")
    text.append("a GPT-2 folder (Hugging Face format)\n")
    text.append("model    ", style="bold")
    text.append(f"{about}\n")
    text.append("folder   ", style="bold")
    text.append(f"{folder}\n\n")
    text.append("Enter explores it: every view of the explorer on its BPE tokens, a prompt of "
                "your own (I), the logit lens (W). It is traced here, not trained.\n")
    return text


class PickerScreen(Screen[None]):
    """Choose what to explore."""

    SCOPED_CSS = False  # the ASCII rule starts at the App's class -ascii
    DEFAULT_CSS = """
    PickerScreen #picker-title {
        height: auto;  /* wraps on a narrow terminal rather than losing its end */
        padding: 0 1;
        text-style: bold;
    }
    PickerScreen #picker { height: 1fr; }
    PickerScreen #scenarios {
        width: 30;
        height: 1fr;
        border: round $accent;
    }
    PickerScreen #card-scroll {
        width: 1fr;
        height: 1fr;
        border: round $primary;
        padding: 0 1;
    }
    App.-ascii PickerScreen #scenarios, App.-ascii PickerScreen #card-scroll {
        border: ascii $accent;
    }
    """

    BINDINGS = [
        Binding("enter", "open", "Open", show=True, tooltip="Open the highlighted scenario or checkpoint"),
        Binding("o", "open_file", "Open file", show=True,
                tooltip="Open a scenario file (.toml), a checkpoint (.safetensors) or a GPT-2 "
                        "folder by its path"),
        Binding("t", "train", "Train", show=True, tooltip="Train the highlighted scenario or checkpoint"),
        Binding("question_mark", "app.help", "Help", show=True),
        Binding("q", "app.quit", "Quit", show=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.checkpoints: dict[str, CheckpointInfo] = {}  # option id (path) -> what it holds
        self.gpt2_folders: dict[str, str] = {}  # option id (absolute path) -> its summary

    def compose(self) -> ComposeResult:
        yield Static("tui-tfs: pick a scenario (Enter); o opens a file or a GPT-2 folder by path",
                     id="picker-title")
        with Horizontal(id="picker"):
            yield OptionList(id="scenarios")
            with VerticalScroll(id="card-scroll"):
                yield Static(id="card")
        yield FittingFooter()

    def on_resize(self) -> None:
        self.app.check_size()

    def on_mount(self) -> None:
        self.fill()
        self.query_one("#scenarios", OptionList).focus()

    def on_screen_resume(self) -> None:
        """Back from the explorer: mark what is open now, list checkpoints saved meanwhile,
        and stand on the entry just left."""
        sessions = getattr(self.app, "sessions", {})
        left = next((key for key, s in sessions.items() if s is self.app.session), None)
        self.fill(left)

    # -- the list --------------------------------------------------------------------------------
    def fill(self, stand_on: str | None = None) -> None:
        """(Re)build the list, on the entry whose source_key is `stand_on`, else on the one
        highlighted before."""
        options = self.query_one("#scenarios", OptionList)
        keep = self._highlighted()
        self.checkpoints = {str(info.path): info for info in list_checkpoints()}
        entries = [Option(self._label(Text.assemble((name, "bold"),
                                                    f"  {model_kind_label(TASKS[name].kind)}"),
                                      name), id=name) for name in TASKS]
        if self.checkpoints:
            entries.append(Option(Text(f"saved in {CHECKPOINT_DIR}/", style="italic"),
                                  id=HEADING, disabled=True))
            entries += [Option(self._label(Text(info.path.name, style="bold"), key,
                                           self._about(info)), id=key)
                        for key, info in self.checkpoints.items()]
        self.gpt2_folders = {key: describe_gpt2_folder(key) for key in self._gpt2_sources()}
        if self.gpt2_folders:
            entries.append(Option(Text("GPT-2 folders", style="italic"), id=GPT2_HEADING,
                                  disabled=True))
            entries += [Option(self._label(Text(Path(key).name or key, style="bold"), key,
                                           "cannot open (see its card)" if about.startswith(
                                               "cannot") else f"GPT-2, {about.split(',')[0]}"),
                               id=key)
                        for key, about in self.gpt2_folders.items()]
        options.clear_options()
        options.add_options(entries)
        ids = [entry.id for entry in entries]
        keep = next((i for i in ids if i not in HEADINGS and source_key(i) == stand_on), keep)
        options.highlighted = ids.index(keep) if keep in ids else 0
        self._show_card(ids[options.highlighted])

    def _gpt2_sources(self) -> list[str]:
        """The GPT-2 folders here and below, and those opened in this app (a folder given on
        the command line), by absolute path."""
        found = [str(folder.resolve()) for folder in find_gpt2_folders(Path.cwd())]
        opened = [key for key, session in getattr(self.app, "sessions", {}).items()
                  if isinstance(session.scenario, Gpt2Scenario)]
        return list(dict.fromkeys(found + opened))

    @staticmethod
    def _about(info: CheckpointInfo) -> str:
        """Step and metric; the scenario too when the file's name does not say it."""
        if info.path.stem == info.scenario:
            return info.summary()
        return f"{info.scenario}\n{info.summary()}"

    def _label(self, head: Text, source: str, detail: str = "") -> Text:
        """An entry: its name, what it is, and what this app did with it so far. Lines
        longer than the list wrap (OptionList): a number is never cut."""
        text = head.copy()
        for line in detail.splitlines():
            text.append(f"\n  {line}", style="dim")
        mark = self._mark(source)
        if mark:
            text.append(f"\n  {mark}", style="bold")
        return text

    def _mark(self, source: str) -> str:
        """"* open", "* step 120, not saved", "* step 120, saved": from the app's sessions."""
        session = getattr(self.app, "sessions", {}).get(source_key(source))
        if session is None:
            return ""
        c = session.training
        if c is None or (c.step == 0 and not c.running):
            return "* open"
        return f"* step {c.step}, {'not saved' if c.unsaved else 'saved'}"

    def _highlighted(self) -> str | None:
        options = self.query_one("#scenarios", OptionList)
        if options.highlighted is None or not options.option_count:
            return None
        return options.get_option_at_index(options.highlighted).id

    def _show_card(self, source: str | None) -> None:
        card = self.query_one("#card", Static)
        if source in TASKS:
            card.update(scenario_card(source))
        elif source in self.checkpoints:
            card.update(checkpoint_card(self.checkpoints[source]))
        elif source in self.gpt2_folders:
            card.update(gpt2_card(source, self.gpt2_folders[source]))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show_card(event.option.id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(ScenarioPicked(event.option.id))

    # -- actions ----------------------------------------------------------------------------------
    def action_open(self) -> None:
        source = self._highlighted()
        if source is not None and source not in HEADINGS:
            self.post_message(ScenarioPicked(source))

    def action_train(self) -> None:
        source = self._highlighted()
        if source is not None and source not in HEADINGS:
            self.post_message(ScenarioPicked(source, train=True))

    def action_open_file(self) -> None:
        def chosen(path: str | None) -> None:
            if path and path.strip():
                self.post_message(ScenarioPicked(os.path.expanduser(path.strip())))

        self.app.push_screen(PromptScreen("Scenario file (.toml), checkpoint (.safetensors) or "
                                          "GPT-2 folder to open:",
                                          "my_task.toml, checkpoints/reverse.safetensors or gpt2/"),
                             chosen)
