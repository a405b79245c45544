"""The training screen: the loss plotted live, the numbers, held-out predictions, per-layer
gradient norms and a generation panel; start, pause, stop, change settings, save, inspect.

Training runs on a thread of the screen's own (`_train`) that calls the controller's `run_for`
half a second at a time and posts `TrainingProgress` between, so the screen redraws at about
2 Hz whatever the step rate. The thread checks its stop event before every step, so leaving
waits for at most the step in flight; quitting waits for none: the thread is a daemon the app
never joins. (A Textual thread worker runs on asyncio's default executor, which `App.run`
joins on the way out: quitting then waited out the step or held-out evaluation in flight,
seconds on a larger model.) Checkpoints are written by `w`, on the UI thread; quitting with
steps no checkpoint holds asks first (the app's quit question). Inspecting pauses first: the
explorer it opens runs the live model, which must not train at the same time.

The keys live beside it, one concern a module: training_keys.py (the bindings),
training_inspect.py (i, n: into the explorer), training_save.py (w), training_timeline.py
(snapshots, branches), training_generate.py (g and its settings).
"""
from __future__ import annotations

import threading
from functools import partial

import numpy as np
from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Static

from ..fair_share import TrainingPriority, memory_help, memory_reason
from ..messages import TrainingProgress, TrainingStopped
from ..widgets.footer import FittingFooter
from ..widgets.titles import fit_title
from ..style import Style
from ..session import Session
from ..probe_watch import watch_training
from ..training import DIVERGED, RUNNING, TrainingController
from ..widgets.loss_plot import LossPlot, PlotData
from ..widgets.metrics import GradHistory, MetricsPanel
from ..widgets.predictions import GenerationPanel, PredictionsTable
from .dialogs import ChoiceScreen, PromptScreen
from .training_generate import GenerationActions
from .training_inspect import InspectActions
from .training_keys import (GENERATE_BINDINGS, RUN_BINDINGS, SCREEN_BINDINGS,
                            TIMELINE_BINDINGS, VIEW_BINDINGS)
from .training_save import SaveActions
from .training_timeline import TimelineActions

POST_EVERY = 0.5  # seconds of training between two redraws (2 Hz: light over SSH, cheap)
COMPACT_PANELS = ("plot", "metrics", "views")  # what v flips through below 80x23, in order



class TrainingScreen(GenerationActions, TimelineActions, SaveActions, InspectActions,
                     Screen[None]):
    """Train the session's model and watch it learn."""

    SCOPED_CSS = False  # some rules start at the App's classes (-compact, -large, -ascii)
    DEFAULT_CSS = """
    TrainingScreen #tr-top { height: 12; }
    /* below 80x23 one panel at a time (v flips); a projector's terminal: the plot takes half */
    App.-compact TrainingScreen #tr-top { height: 1fr; }
    App.-large TrainingScreen #tr-top { height: 55%; }
    TrainingScreen #tr-views {
        height: 1fr;
        border: round $secondary;
        border-title-align: left;
    }
    TrainingScreen #tr-views > * {
        height: 1fr;
        padding: 0 1;
        scrollbar-size: 1 1;
    }
    TrainingScreen #tr-views Static {
        width: auto;
        height: auto;
    }
    TrainingScreen #tr-status {
        height: 1;
        background: $boost;
        padding: 0 1;
    }
    App.-ascii TrainingScreen #tr-views { border: ascii $accent; }
    """

    BINDINGS = (RUN_BINDINGS + TIMELINE_BINDINGS + VIEW_BINDINGS + GENERATE_BINDINGS
                + SCREEN_BINDINGS)
    GROUPS = [("Training", RUN_BINDINGS), ("Timeline", TIMELINE_BINDINGS), ("Panels", VIEW_BINDINGS),
              ("Generation", GENERATE_BINDINGS), ("Screen", SCREEN_BINDINGS)]

    def __init__(self, session: Session, style: Style, controller: TrainingController | None = None
                 ) -> None:
        super().__init__()
        self.session = session
        self.style = style
        if controller is None:
            controller = session.training or TrainingController(session.scenario, session.model)
        if controller.model is not session.model and not controller.running:
            controller.adopt(session.model)  # the explorer flipped a switch meanwhile
        session.training = controller
        self.controller = controller
        watch_training(controller)  # the probe: its attention at every snapshot the run keeps
        self.inspecting: Session | None = None  # the explorer session opened on the live model
        self._after_pause: str | None = None  # "inspect" | "inspect_nan" once the worker ends
        self.prompt: str | None = None
        self.temperature, self.top_k, self.top_p = 1.0, None, None
        self.generated = None
        self.log_scale = True  # the loss plot's y axis (y toggles)
        self._notice: str | None = None  # what the status line shows
        self.compact_panel = "plot"  # below 80x23, the one panel on screen (v flips)
        self.selected_step: int | None = None  # the snapshot picked on the timeline (its step)
        self._stop = threading.Event()  # set: the training thread ends before its next step

    def compose(self) -> ComposeResult:
        with Horizontal(id="tr-top"):
            yield LossPlot(id="tr-plot")
            yield MetricsPanel(id="tr-metrics")
        with ContentSwitcher(initial="tr-predictions", id="tr-views"):
            with VerticalScroll(id="tr-predictions"):
                yield PredictionsTable()
            with VerticalScroll(id="tr-layers"):
                yield GradHistory()
            with VerticalScroll(id="tr-generate"):
                yield GenerationPanel()
        yield Static(id="tr-status")
        yield FittingFooter()

    def on_mount(self) -> None:
        settings = self.app.class_settings  # class mode: training pauses past the memory limit
        self.controller.guard = partial(memory_reason, settings) if settings.enabled else None
        self.apply_layout()
        self.refresh_all()

    def _say_held(self) -> None:
        """The whole message when the memory limit stopped training (the status line: its start)."""
        if self.controller.held is not None:
            self.notify(escape(memory_help(self.app.class_settings, self.controller.notice)),
                        title="memory limit", severity="warning", timeout=30)

    def on_resize(self) -> None:
        self.app.check_size()
        self.apply_layout()
        self.call_after_refresh(self._fit_titles)  # the boxes' new widths, after layout

    @property
    def compact(self) -> bool:
        """Below 80x23: one panel at a time, the plot, the numbers or panel 1/2/3 (v flips)."""
        return bool(getattr(self.app, "compact", False))

    def apply_layout(self) -> None:
        """Every panel from 80x23; below, only `compact_panel`, the whole screen's height
        (the plot had 2 or 3 rows there when it shared them with the numbers and a panel)."""
        compact = self.compact
        shown = self.compact_panel if compact else None
        self.query_one("#tr-top").display = shown in (None, "plot", "metrics")
        self.query_one("#tr-plot").display = shown in (None, "plot")
        self.query_one("#tr-metrics").display = shown in (None, "metrics")
        self.query_one("#tr-views").display = shown in (None, "views")
        self.set_class(compact, "-compact")
        self._fit_titles()

    def action_flip_panel(self) -> None:
        """Below 80x23: the next panel in COMPACT_PANELS; above, every panel is already shown."""
        if not self.compact:
            self.notify("every panel is on screen at this size; v flips them below 80x23",
                        title="panels")
            return
        at = COMPACT_PANELS.index(self.compact_panel)
        self.compact_panel = COMPACT_PANELS[(at + 1) % len(COMPACT_PANELS)]
        self.apply_layout()
        self.refresh_all()
        self.call_after_refresh(self.refresh_all)  # again at the panel's laid-out size

    def _fit_titles(self) -> None:
        self._plot_title()
        self.query_one("#tr-metrics").border_title = "now (v: panel)" if self.compact else "now"
        self._titles()

    def on_screen_resume(self) -> None:
        """Back from the explorer (or a dialog): train whatever model it left behind."""
        if self.inspecting is not None and self.inspecting.model is not self.controller.model:
            self.controller.adopt(self.inspecting.model)  # a switch was flipped in there
        self.inspecting = None
        self.refresh_all()

    # -- drawing -----------------------------------------------------------------------------------
    def plot_data(self) -> PlotData:
        c = self.controller
        history = list(c.history)  # a snapshot: the worker appends meanwhile
        steps = np.fromiter((s.step for s in history), dtype=np.int64, count=len(history))
        losses = np.fromiter((s.loss for s in history), dtype=np.float64, count=len(history))
        evals = list(c.evaluations)
        kept = c.snapshots.kept
        data = PlotData(steps, losses, [e.step for e in evals], [e.metrics["loss"] for e in evals],
                        c.uniform_loss, c.optimum,
                        [m.step for m in c.markers if m.kind != "nan"],
                        [m.step for m in c.markers if m.kind == "nan"],
                        snapshots=[s.step for s in kept], selected=self.selected_index(kept))
        other = c.other
        if other is not None:
            data.label, data.other_label, data.parted_at = c.label, other.label, other.parted_at
            data.other_steps = np.array([s.step for s in other.history], dtype=np.int64)
            data.other_losses = np.array([s.loss for s in other.history], dtype=np.float64)
        return data

    def refresh_all(self, evaluated: bool = True) -> None:
        c = self.controller
        plot = self.query_one(LossPlot)
        plot.border_subtitle = self.timeline_title()  # first: a thinned-out pick moves
        plot.show(self.plot_data(), self.style, self.log_scale)
        self.query_one(MetricsPanel).show(c, self.style)
        view = self.query_one("#tr-views", ContentSwitcher).current
        if evaluated:
            self.query_one(PredictionsTable).show(c, self.style)
        if view == "tr-layers":
            self.query_one(GradHistory).show(c, self.style)
        if view == "tr-generate":
            self.query_one(GenerationPanel).show(self.generated, self._settings(), self.style)
        status = self.query_one("#tr-status", Static)
        if self._notice != c.notice:
            self._notice = c.notice
            status.update(c.notice, layout=False)

    def _plot_title(self) -> None:
        scale = "log" if self.log_scale else "linear"
        flip = ", v: numbers" if self.compact else ""
        fit_title(self.query_one("#tr-plot"),
                  f"loss: {self.session.scenario.name}, {scale} scale (y{flip})", self.style)

    def _titles(self) -> None:
        titles = {"tr-predictions": "held-out predictions (1 | 2 layers | 3 generate)",
                  "tr-layers": "gradient norms per layer (2 | 1 predictions | 3 generate)",
                  "tr-generate": "generate (3 | g prompt, < > temp, k top-k, p top-p)"}
        switcher = self.query_one("#tr-views", ContentSwitcher)
        title = titles[switcher.current or "tr-predictions"]
        if self.compact:  # the generation keys stay in help: 60 columns hold this much
            title = title.split(" (")[0] + " (1 2 3 | v plot)"
        fit_title(switcher, title, self.style)

    # -- the training thread ------------------------------------------------------------------------
    def _train(self) -> None:
        """Start a training thread: a daemon, so quitting never waits for it (module docstring).
        One at a time: a thread still finishing a pause is told to stop first."""
        self._stop_training()
        self._stop = stop = threading.Event()
        threading.Thread(target=self._train_loop, args=(stop,), name="tui-tfs training",
                         daemon=True).start()

    def _stop_training(self) -> None:
        """Tell the training thread to stop before its next step; never waits for it."""
        self._stop.set()

    def on_unmount(self) -> None:
        self._stop_training()  # popped or quitting: the thread takes no further step

    def _train_loop(self, stop: threading.Event) -> None:
        """The thread's body: train while RUNNING and not stopped; only `post_message` out."""
        c = self.controller
        seen = len(c.evaluations)
        try:
            with TrainingPriority(self.app.class_settings):  # class mode: keys win over steps
                while c.state == RUNNING and not stop.is_set():
                    c.run_for(POST_EVERY, stop.is_set)
                    if stop.is_set():
                        break
                    self.post_message(TrainingProgress(c.step, len(c.evaluations) != seen))
                    seen = len(c.evaluations)
        except Exception as error:  # a bug must not kill the app mid-run: say so and pause
            c.state, c.notice = "paused", f"training stopped by an error: {error!r}"
        if not stop.is_set():
            self.post_message(TrainingStopped(c.state))

    def on_training_progress(self, message: TrainingProgress) -> None:
        self.refresh_all(message.evaluated)

    def on_training_stopped(self, message: TrainingStopped) -> None:
        self.refresh_all()
        self._say_held()
        pending, self._after_pause = self._after_pause, None
        if message.state == DIVERGED:
            self._offer_nan()
        elif pending == "one_step":
            self.open_step_trace()
        elif pending is not None:
            self.open_inspector(at_nan=pending == "inspect_nan")

    # -- running -----------------------------------------------------------------------------------
    def action_toggle_run(self) -> None:
        c = self.controller
        if c.running:
            c.request("pause")
        else:
            self._stop_training()  # a thread still finishing its pause must not train on
            if c.start():
                self._train()
            else:
                self._say_held()
        self.refresh_all(False)

    def action_stop(self) -> None:
        self.controller.request("stop")
        self.refresh_all(False)

    def action_leave(self) -> None:
        """Let go of the timeline's pick; else back to the explorer: pause, and show it the
        trained weights."""
        if self.selected_step is not None:
            self.selected_step = None
            self.refresh_all(False)
            return
        c = self.controller
        c.request("pause")
        self._stop_training()
        with c.lock:  # no step runs once this is held after the request
            self.session.model = c.model
            if self.session.trace is not None:
                self.session.record(self.session.trace.batch, self.session.source)
        self.app.pop_screen()

    # -- settings between steps ----------------------------------------------------------------------
    def action_speed(self, by: int) -> None:
        self.controller.change_speed(by)
        self.refresh_all(False)

    def action_scale_lr(self, factor: float) -> None:
        self.controller.set_lr(self.controller.config.lr * factor)
        self.refresh_all(False)

    def action_set_lr(self) -> None:
        def chosen(value: str | None) -> None:
            if value is None:
                return
            try:
                self.controller.set_lr(float(value))
            except ValueError:
                self.notify(escape(f"{value!r} is not a positive number"), severity="error")
            self.refresh_all(False)

        self.app.push_screen(PromptScreen("Peak learning rate from the next step on:", "e.g. 3e-3",
                                          f"{self.controller.config.lr:g}"), chosen)

    def action_break_switch(self) -> None:
        breaks = self.controller.model.config.breaks
        names = list(breaks.__dataclass_fields__)

        def chosen(name: str | None) -> None:
            if name:
                self.controller.toggle_break(name)
                self.refresh_all(False)

        self.app.push_screen(ChoiceScreen("Toggle a break-it switch (applies between steps):",
                                          [(f"[{'x' if getattr(breaks, n) else ' '}] {n}", n)
                                           for n in names]), chosen)

    # -- panels and generation -------------------------------------------------------------------------
    def action_view(self, name: str) -> None:
        self.query_one("#tr-views", ContentSwitcher).current = name
        if self.compact and self.compact_panel != "views":  # 1/2/3 (and g) show their panel
            self.compact_panel = "views"
            self.apply_layout()
        self._titles()
        self.refresh_all()
        self.call_after_refresh(self.refresh_all)  # again at the panel's laid-out width

    def action_probe(self) -> None:
        from .probe import ProbeScreen

        self.app.push_screen(ProbeScreen(self.controller, self.style))

    def action_toggle_log(self) -> None:
        self.log_scale = not self.log_scale
        self._plot_title()
        self.refresh_all(False)

    def _settings(self) -> str:
        k = "off" if self.top_k is None else str(self.top_k)
        p = "off" if self.top_p is None else f"{self.top_p:g}"
        return f"temperature {self.temperature:.2f}  top-k {k}  top-p {p}  (weights of step " \
               f"{self.controller.step})"
