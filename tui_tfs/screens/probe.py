"""The probe scrubber: the probe input's attention at every snapshot of the run, one head or
every layer x head, with the step and the loss there; and the heatmaps over training time
(gradient norm per layer, attention entropy per head). Opened from the training screen (`a`);
training goes on behind it, and the screen follows the newest snapshot while it is on the
last one (a timer redraws twice a second, only when something new arrived).
"""
from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from scenarios import ScenarioError

from .. import probe_views as views
from ..probe_watch import watch_training
from ..style import Style
from ..widgets.footer import FittingFooter
from ..widgets.probe_panel import ProbePanel
from .dialogs import PromptScreen
from .help import HelpScreen

SCRUB_BINDINGS = [
    # priority: the panel, when focused, would take left/right/home/end to scroll sideways
    Binding("left", "scrub(-1)", "Earlier", show=True, key_display="←", priority=True,
            tooltip="The snapshot before this one"),
    Binding("right", "scrub(1)", "Later", show=True, key_display="→", priority=True,
            tooltip="The snapshot after this one"),
    Binding("home", "scrub_to(0)", "First snapshot (before training)", show=False,
            priority=True),
    Binding("end", "scrub_to(-1)", "Newest snapshot (follows training)", show=False,
            priority=True),
]
VIEW_BINDINGS = [
    Binding("h", "head(1)", "Head", show=True, tooltip="Next head"),
    Binding("H", "head(-1)", "Previous head", show=False),
    Binding("y", "layer(1)", "Layer", show=True, tooltip="Next attention layer"),
    Binding("Y", "layer(-1)", "Previous attention layer", show=False),
    Binding("o", "mode('overview')", "All", show=True,
            tooltip="Every layer x head at this snapshot (o again: one head)"),
    Binding("t", "mode('time')", "Time", show=True,
            tooltip="Heatmaps over training: gradient norm per layer, entropy per head"),
    Binding("d", "diff", "Diff", show=True,
            tooltip="Diff view: a parameter or the probe's attention between two snapshots"),
    Binding("e", "probe_input", "Probe an input of your own (re-probes every kept snapshot)",
            show=False),
]
SCREEN_BINDINGS = [
    Binding("question_mark", "help", "Help", show=True, tooltip="Help: every key"),
    Binding("escape", "back", "Back to training", show=False),
    Binding("q", "app.quit", "Quit", show=False),
]
REDRAW_EVERY = 0.5  # seconds between looks for new snapshots while training runs


class ProbeScreen(Screen[None]):
    """Scrub the probe's attention through training; see the module docstring."""

    DEFAULT_CSS = """
    ProbeScreen #pr-head { height: auto; padding: 0 1; background: $boost; }
    """
    BINDINGS = SCRUB_BINDINGS + VIEW_BINDINGS + SCREEN_BINDINGS
    GROUPS = [("Scrubbing snapshots", SCRUB_BINDINGS), ("Views", VIEW_BINDINGS),
              ("Screen", SCREEN_BINDINGS)]

    def __init__(self, controller, style: Style) -> None:
        super().__init__()
        self.controller = controller
        self.style = style
        self.watch = watch_training(controller)
        self.watch.ascii = style.ascii
        self.index = len(self.watch.frames) - 1  # the snapshot shown
        self.follow = True  # on the newest snapshot: move on as new ones arrive
        self.mode = "map"  # "map" | "overview" | "time"
        self.attn_layer = self._default_layer()
        self.head = 0
        self._seen = (-1, -1)  # (frames, steps) at the last redraw

    def _default_layer(self) -> str:
        """The last cross-attention layer (where reversal's anti-diagonal forms), else the last."""
        layers = self.watch.frames[-1].layers
        cross = [layer for layer in layers if layer in self.watch.frames[-1].cross]
        return (cross or list(layers))[-1]

    def compose(self) -> ComposeResult:
        yield Static(id="pr-head")
        yield ProbePanel(id="pr-body")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.redraw()
        self.set_interval(REDRAW_EVERY, self._poll)

    def _poll(self) -> None:
        if (len(self.watch.frames), self.controller.step) != self._seen:
            self.redraw()

    # -- drawing ------------------------------------------------------------------------------
    def redraw(self) -> None:
        frames = self.watch.frames
        self._seen = (len(frames), self.controller.step)
        if self.follow or self.index >= len(frames):
            self.index = len(frames) - 1
        head = self.query_one("#pr-head", Static)
        width = max(20, self.size.width - 2) if self.size.width else 78
        head.update(self.header(width))
        self.query_one(ProbePanel).show(self, self.style)

    def header(self, width: int) -> Text:
        frame = self.watch.frames[self.index]
        text = views.frame_header(self.watch, self.index,
                                  views.train_loss_at(self.controller, frame.step), self.style,
                                  width)
        text.append("\n")
        text.append_text(views.timeline([f.step for f in self.watch.frames], self.index,
                                        width, self.style))
        return text

    def body(self, width: int | None) -> Text:
        frame = self.watch.frames[self.index]
        if self.mode == "time":
            return views.over_time(self.controller, self.watch, self.style, width)
        if self.mode == "overview":
            return views.overview(frame, self.attn_layer, self.style, width)
        return views.one_map(self.watch, frame, self.attn_layer, self.head, self.style, width)

    # -- keys -----------------------------------------------------------------------------------
    def action_scrub(self, by: int) -> None:
        self.action_scrub_to(max(0, min(len(self.watch.frames) - 1, self.index + by)))

    def action_scrub_to(self, at: int) -> None:
        last = len(self.watch.frames) - 1
        self.index = last if at < 0 else min(at, last)
        self.follow = self.index == last
        if self.mode == "time":
            self.mode = "map"  # moving in time means looking at a snapshot
        self.redraw()

    def action_head(self, by: int) -> None:
        heads = views.head_count(self.watch.frames[self.index])
        self.head = (self.head + by) % max(1, heads)
        self.mode = "map"
        self.redraw()

    def action_layer(self, by: int) -> None:
        layers = list(self.watch.frames[self.index].layers)
        at = layers.index(self.attn_layer) if self.attn_layer in layers else 0
        self.attn_layer = layers[(at + by) % len(layers)]
        if self.mode == "time":
            self.mode = "map"
        self.redraw()

    def action_mode(self, mode: str) -> None:
        self.mode = "map" if self.mode == mode else mode
        self.redraw()

    def action_diff(self) -> None:
        from .diff import DiffScreen

        self.app.push_screen(DiffScreen(self.controller, self.style,
                                        self.watch.frames[self.index].step))

    def action_probe_input(self) -> None:
        def chosen(value: str | None) -> None:
            if not value:
                return
            try:
                self.watch.set_probe(value, self.controller)
            except ScenarioError as error:
                self.notify(escape(str(error)), title="probe", severity="error", timeout=8)
                return
            self.attn_layer = self.attn_layer if self.attn_layer in self.watch.frames[-1].layers \
                else self._default_layer()
            self.redraw()

        self.app.push_screen(PromptScreen("A probe input, traced at every kept snapshot:",
                                          "e.g. " + str(self.watch.scenario.examples[0]),
                                          self.watch.text), chosen)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(list(self.GROUPS)))

    def action_back(self) -> None:
        self.app.pop_screen()
