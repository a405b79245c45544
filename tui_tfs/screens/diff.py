"""The diff view: any parameter, or the probe's attention, between two states of the run (two
snapshots, a snapshot and now, or before and after one step), drawn as B - A on a zero-centred
scale with ||B-A||, ||A|| and the relative change. Opened from the probe scrubber (`d`).
"""
from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from engine.training.probe import probe_frame

from ..diff import State, diff_text, parameter
from ..probe_watch import watch_training
from ..style import Style
from ..time_heatmap import short_layer
from ..widgets.footer import FittingFooter
from ..widgets.probe_panel import ProbePanel
from .dialogs import ChoiceScreen
from .help import HelpScreen

DIFF_BINDINGS = [
    Binding("left", "move('b', -1)", "B", show=True, key_display="←→", priority=True,
            tooltip="B: the later state, one earlier (→ one later)"),
    Binding("right", "move('b', 1)", "B later", show=False, priority=True),
    Binding("comma", "move('a', -1)", "A", show=True, key_display=",.",
            tooltip="A: the earlier state, one earlier (. one later)"),
    Binding("full_stop", "move('a', 1)", "A later", show=False),
    Binding("right_square_bracket", "tensor(1)", "Tensor", show=True, key_display="[]",
            tooltip="Next tensor ([ previous): every parameter, then the probe's attention"),
    Binding("left_square_bracket", "tensor(-1)", "Previous tensor", show=False),
    Binding("l", "choose_tensor", "List", show=True, tooltip="Choose the tensor from a list"),
    Binding("h", "head(1)", "Next head (the probe's attention)", show=False),
    Binding("n", "one_step", "1 step", show=True,
            tooltip="Train one step (paused) and diff before (A) and after (B) it"),
]
SCREEN_BINDINGS = [
    Binding("question_mark", "help", "Help", show=True, tooltip="Help: every key"),
    Binding("escape", "back", "Back to the scrubber", show=False),
    Binding("q", "app.quit", "Quit", show=False),
]


class DiffScreen(Screen[None]):
    """B - A of one tensor between two states; see the module docstring."""

    DEFAULT_CSS = """
    DiffScreen #df-head { height: auto; padding: 0 1; background: $boost; }
    """
    BINDINGS = DIFF_BINDINGS + SCREEN_BINDINGS
    GROUPS = [("Diff", DIFF_BINDINGS), ("Screen", SCREEN_BINDINGS)]

    def __init__(self, controller, style: Style, step: int | None = None) -> None:
        super().__init__()
        self.controller = controller
        self.style = style
        self.watch = watch_training(controller)
        model = controller.model
        self.slices = dict(model.packed.slices)
        self.shapes = {p.name: p.data.shape for p in model.params()}
        self.states: list[State] = self._states()
        steps = [s.step for s in self.states]
        self.b = len(self.states) - 1
        self.a = steps.index(step) if step in steps[:-1] else max(0, self.b - 1)
        self.tensors: list[tuple[str, str]] = [("param", n) for n in self.slices]
        self.tensors += [("attn", layer) for layer in self._layers()]
        self.tensor = 0
        self.head = 0

    def _states(self) -> list[State]:
        """Every kept snapshot, then the run now (the live weights, probed now)."""
        frames = {f.step: f for f in self.watch.frames}
        states = [State(f"step {s.step}", s.step, s.weights, frames.get(s.step))
                  for s in self.watch.snapshots.kept]
        c = self.controller
        with c.lock:
            weights = c.model.packed.data.copy()
            frame = probe_frame(c.model, self.watch.batch, c.step)
        if not states or states[-1].step != c.step or \
                not np.array_equal(states[-1].weights, weights):
            states.append(State(f"now (step {c.step})", c.step, weights, frame))
        return states

    def _layers(self) -> list[str]:
        frame = self.states[-1].frame
        return list(frame.layers) if frame is not None else []

    def compose(self) -> ComposeResult:
        yield Static(id="df-head")
        yield ProbePanel(id="df-body")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        a, b = self.states[self.a], self.states[self.b]
        head = Text(f"diff: A = {a.label} ({self.a + 1} of {len(self.states)}), B = {b.label} "
                    f"({self.b + 1} of {len(self.states)})", style="bold")
        self.query_one("#df-head", Static).update(head)
        self.query_one(ProbePanel).show(self, self.style)

    def current(self) -> tuple[str, np.ndarray, np.ndarray]:
        """(name, A's tensor, B's tensor) of the tensor chosen."""
        kind, name = self.tensors[self.tensor]
        a, b = self.states[self.a], self.states[self.b]
        if kind == "param":
            return (name, parameter(a.weights, self.slices, self.shapes, name),
                    parameter(b.weights, self.slices, self.shapes, name))
        heads = b.frame.attention[name].shape[0]
        self.head %= heads
        return (f"probe attention {short_layer(name)} head {self.head + 1}/{heads} ({name})",
                a.frame.attention[name][self.head], b.frame.attention[name][self.head])

    def body(self, width: int | None) -> Text:
        kind, name = self.tensors[self.tensor]
        if kind == "attn" and (self.states[self.a].frame is None
                               or self.states[self.b].frame is None):
            return Text("the probe was not run at one of these states", style="dim")
        label, a, b = self.current()
        return diff_text(label, a, b, self.states[self.a].label, self.states[self.b].label,
                         self.style, width)

    # -- keys -----------------------------------------------------------------------------------
    def action_move(self, which: str, by: int) -> None:
        last = len(self.states) - 1
        setattr(self, which, max(0, min(last, getattr(self, which) + by)))
        self.redraw()

    def action_tensor(self, by: int) -> None:
        self.tensor = (self.tensor + by) % len(self.tensors)
        self.redraw()

    def action_head(self, by: int) -> None:
        self.head += by
        self.redraw()

    def action_choose_tensor(self) -> None:
        def chosen(index: int | None) -> None:
            if index is not None:
                self.tensor = index
                self.redraw()

        choices = [(name if kind == "param" else f"probe attention {name}", i)
                   for i, (kind, name) in enumerate(self.tensors)]
        self.app.push_screen(ChoiceScreen("The tensor to compare:", choices, filter=True,
                                          selected=self.tensor), chosen)

    def action_one_step(self) -> None:
        """Train one step on the paused run; A: the weights before it, B: after it."""
        c = self.controller
        if c.running:
            self.notify("pause training first (space on the training screen)", title="one step")
            return
        result = c.step_traced(ascii_only=self.style.ascii)
        if result is None:
            self.notify(c.notice, title="one step")
            return
        _, before = result
        with c.lock:
            after = c.model.packed.data.copy()
            after_frame = probe_frame(c.model, self.watch.batch, c.step)
        before_frame = probe_frame(before, self.watch.batch, c.step - 1)
        self.states += [State(f"before step {c.step}", c.step - 1, before.packed.data.copy(),
                              before_frame),
                        State(f"after step {c.step}", c.step, after, after_frame)]
        self.a, self.b = len(self.states) - 2, len(self.states) - 1
        self.redraw()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(list(self.GROUPS)))

    def action_back(self) -> None:
        self.app.pop_screen()
