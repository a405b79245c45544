"""The explorer: the layer tree on the left; the formula panel and one view on the right; the
status line and the keys at the bottom. Every action is a Binding with a description, so it is
in the footer (the stepping keys), the command palette (all) and the help screen (all).

Attributes down: after every action `refresh_views` hands the session to the tree, the status
line, the formula panel and the visible view. Messages up: the tree posts `EventPicked`.
"""
from __future__ import annotations

from rich.markup import escape

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import ContentSwitcher

from scenarios import ScenarioError

from ..messages import EventPicked
from ..render import Style
from ..session import Session, SessionError
from ..widgets import (AttentionOverview, AttentionView, EmbeddingView, FormulaPanel,
                       GradNormView, LayerTree, PositionalView, StatusLine, TemperatureView,
                       TensorView)
from ..widgets.footer import FittingFooter
from .dialogs import ChoiceScreen, PromptScreen, ReportScreen

VIEWS = ("tensor", "attention", "overview", "grads", "positional", "embedding", "temperature")

STEP_BINDINGS = [
    Binding("n", "step('next')", "Next", show=True, tooltip="Next event"),
    Binding("p", "step('prev')", "Prev", show=True, tooltip="Previous event"),
    Binding("i", "step('into')", "Into", show=True, tooltip="Step into the layer (one level down)"),
    Binding("o", "step('over')", "Over", show=True,
            tooltip="Step over the current layer (the status line's level)"),
    Binding("u", "step('out')", "Out", show=True,
            tooltip="Step out of the layer enclosing the level"),
    Binding("O", "step('back_over')", "Back over (previous layer)", show=False),
    Binding("e", "step('end_of_forward')", "EndFwd", show=True, tooltip="Run to the end of the forward pass"),
    Binding("b", "step('first_backward')", "Bwd", show=True, tooltip="Run to the first backward event"),
    Binding("U", "step('first_update')", "Run to the optimizer's update (a trained step's trace)",
            show=False),
    Binding("x", "find_nonfinite", "Run to next NaN/Inf", show=False),
    Binding("g", "find_grad_norm", "Run to next gradient norm above a bound", show=False),
    Binding("l", "goto_layer", "Run to a chosen layer", show=False),
]
TRACE_BINDINGS = [
    Binding("r", "new_batch", "Restart on a new random batch", show=False),
    Binding("N", "next_example", "Restart on the next example", show=False),
    Binding("I", "own_input", "Trace an input of your own", show=False),
    Binding("c", "run_checks", "Run the built-in checks", show=False),
    Binding("k", "gradient_check", "Gradient check of this parameter", show=False),
    Binding("B", "break_switch", "Toggle a break-it switch and re-run", show=False),
]
VIEW_BINDINGS = [
    Binding("t", "view('tensor')", "Tensor view", show=False),
    Binding("a", "view('attention')", "Attn", show=True, tooltip="Attention map"),
    Binding("A", "view('overview')", "Attention overview: all layers x heads", show=False),
    Binding("d", "view('grads')", "Gradient norms per layer", show=False),
    Binding("P", "view('positional')", "Positional encoding", show=False),
    Binding("E", "view('embedding')", "Token embeddings", show=False),
    Binding("T", "view('temperature')", "Softmax temperature on one row", show=False),
    Binding("f", "toggle_formula", "Show/hide the formula panel", show=False),
    Binding("F", "expand_formula", "Formula panel: the whole explanation <-> the view",
            show=False),
    Binding("L", "toggle_tree", "Layer tree: show/hide (small terminal: tree <-> view)",
            show=False),
    Binding("right_square_bracket", "tensor(1)", "Next tensor of this event", show=False),
    Binding("left_square_bracket", "tensor(-1)", "Previous tensor of this event", show=False),
    Binding("G", "toggle_gradient", "Switch tensor <-> its gradient", show=False),
    Binding("v", "toggle_numbers", "Numbers <-> shades", show=False),
    Binding("z", "toggle_shared_scale",
            "Shade scale: each map its own <-> one shared across heads/layers", show=False),
    Binding("m", "cycle('item', 1)", "Next batch item", show=False),
    Binding("M", "cycle('item', -1)", "Previous batch item", show=False),
    Binding("h", "cycle('head', 1)", "Next head", show=False),
    Binding("H", "cycle('head', -1)", "Previous head", show=False),
    Binding("s", "cycle('stage', 1)", "Next attention stage (scores/scaled/masked/softmax)", show=False),
    Binding("S", "cycle('stage', -1)", "Previous attention stage", show=False),
    Binding("y", "attention_layer(1)", "Next attention layer", show=False),
    Binding("Y", "attention_layer(-1)", "Previous attention layer", show=False),
    Binding("j", "cycle('query', 1)", "Next query row (temperature view)", show=False),
    Binding("J", "cycle('query', -1)", "Previous query row (temperature view)", show=False),
    Binding("plus", "temperature(2.0)", "Raise softmax temperature x2", show=False),
    Binding("minus", "temperature(0.5)", "Lower softmax temperature /2", show=False),
]
SCREEN_BINDINGS = [
    Binding("question_mark", "app.help", "Help", show=True, tooltip="Help: every key"),
    Binding("ctrl+t", "app.train", "Train", show=True,
            tooltip="Train this scenario's model (live loss plot, predictions, generation)"),
    Binding("escape", "app.pick", "Back: close the overview, else the scenarios", show=False),
    Binding("q", "app.quit", "Quit", show=False),
]


class ExplorerScreen(Screen[None]):
    """Step through one trace of one scenario."""

    BINDINGS = STEP_BINDINGS + TRACE_BINDINGS + VIEW_BINDINGS + SCREEN_BINDINGS
    GROUPS = [("Stepping", STEP_BINDINGS), ("Trace and checks", TRACE_BINDINGS),
              ("Views", VIEW_BINDINGS), ("Screen", SCREEN_BINDINGS)]

    def __init__(self, session: Session, style: Style) -> None:
        super().__init__()
        self.session = session
        self.style = style
        self._before_overview = "tensor"  # the view the overview (A) was opened from
        # None: as the terminal's size suggests (all panels from 80x23, one below); else the
        # user's choice with `L` / `f`
        self._tree_shown: bool | None = None
        self._formula_shown: bool | None = None
        self._formula_expanded = False  # `F`: the formula panel takes the right column
        self._was_compact = False  # the layout the choices above were made in

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield LayerTree(id="tree")
            with Vertical(id="right"):
                yield FormulaPanel(id="formula")
                with ContentSwitcher(initial="tensor", id="views"):
                    yield TensorView(id="tensor")
                    yield AttentionView(id="attention")
                    yield AttentionOverview(id="overview")
                    yield GradNormView(id="grads")
                    yield PositionalView(id="positional")
                    yield EmbeddingView(id="embedding")
                    yield TemperatureView(id="temperature")
        yield StatusLine(id="status")
        yield FittingFooter()

    def on_resize(self) -> None:
        self.app.check_size()
        self.apply_layout()

    def on_mount(self) -> None:
        tree = self.query_one(LayerTree)
        tree.use_style(self.style)
        tree.border_title = self.session.scenario.name
        self.apply_layout()
        self.reload()
        tree.focus()

    # -- which panels show ----------------------------------------------------------------------------
    @property
    def compact(self) -> bool:
        """Below 80x23: one panel at a time (the tree or the view), the formula folded away."""
        return bool(getattr(self.app, "compact", False))

    def apply_layout(self) -> None:
        """Show the panels the size and the user's `L`, `f`, `F` choices ask for. In the compact
        layout the tree and the right column take turns; the formula is off unless asked."""
        compact = self.compact
        if compact != self._was_compact:  # L and f choices belong to the layout they were made in
            self._tree_shown = self._formula_shown = None
            self._was_compact = compact
        tree_shown = (not compact) if self._tree_shown is None else self._tree_shown
        formula_shown = (not compact) if self._formula_shown is None else self._formula_shown
        expanded = self._formula_expanded
        tree = self.query_one(LayerTree)
        tree.display = tree_shown
        tree.border_title = self.session.scenario.name + (" (Enter/L: view)" if compact else "")
        self.query_one("#right").display = not (compact and tree_shown)
        formula = self.query_one(FormulaPanel)
        was_shown = formula.display
        formula.display = formula_shown or expanded
        formula.set_class(expanded, "-expanded")
        self.query_one("#views").display = not expanded
        if formula.display and not was_shown and self.is_mounted:
            formula.show(self.session, self.style)
        if not tree.display and tree.has_focus:
            self.query_one(f"#{self.view_name}").focus()
        self.set_class(compact, "-compact")
        self.query_one(f"#{self.view_name}").border_title = self._view_title()

    # -- drawing ------------------------------------------------------------------------------------
    @property
    def view_name(self) -> str:
        return self.query_one("#views", ContentSwitcher).current or "tensor"

    def reload(self) -> None:
        """A new trace: rebuild the tree, then draw."""
        self._shown_trace = self.session.trace
        self.query_one(LayerTree).load(self.session.trace)
        self.refresh_views()

    def on_screen_resume(self) -> None:
        """Back from training (or a dialog): redraw if the trace was re-recorded meanwhile."""
        if self.is_mounted:
            self.apply_layout()  # the terminal may have been resized meanwhile
        if getattr(self, "_shown_trace", None) is not self.session.trace and self.is_mounted:
            self.reload()

    def refresh_views(self) -> None:
        s = self.session
        self.query_one(LayerTree).show_event(s.cursor.index)
        self.query_one(StatusLine).show(s, self.style)
        formula = self.query_one(FormulaPanel)
        if formula.display:
            formula.show(s, self.style)
        view = self.query_one(f"#{self.view_name}")
        view.show(s, self.style)
        view.border_title = self._view_title()

    def _view_title(self) -> str:
        flip = " (L: tree)" if self.compact else ""
        return {"tensor": "tensor", "attention": "attention map", "overview": "attention overview",
                "grads": "gradient norms", "positional": "positional encoding",
                "embedding": "embeddings", "temperature": "softmax temperature"}[self.view_name] + flip

    # -- messages up --------------------------------------------------------------------------------
    def on_event_picked(self, message: EventPicked) -> None:
        self.session.goto(message.index)
        if self.compact and self.query_one(LayerTree).display:
            self.action_toggle_tree()  # one panel at a time: the picked event's view
        self.refresh_views()

    # -- stepping -----------------------------------------------------------------------------------
    def action_step(self, how: str) -> None:
        self.session.step(how)
        self.refresh_views()

    def action_find_nonfinite(self) -> None:
        if not self.session.find("nonfinite"):
            self.notify("no NaN or Inf after this event", title="run to NaN/Inf")
        self.refresh_views()

    def action_find_grad_norm(self) -> None:
        def chosen(value: str | None) -> None:
            if value is None:
                return
            try:
                bound = float(value)
            except ValueError:
                self.notify(escape(f"{value!r} is not a number"), severity="error")
                return
            if not self.session.find("grad_norm", bound):
                self.notify(f"no gradient with norm above {bound:g} after this event",
                            title="run to gradient norm")
            self.refresh_views()

        self.app.push_screen(PromptScreen("Run to the next event with a gradient norm above:",
                                          "e.g. 1.0", "1.0"), chosen)

    def action_goto_layer(self) -> None:
        paths = self.session.layer_paths()

        def chosen(path: str | None) -> None:
            if path is None:
                return
            phase = self.session.event.phase
            try:
                self.session.cursor.to_path(path, phase)
            except KeyError:
                self.session.cursor.to_path(path, "forward" if phase == "backward" else "backward")
            self.session.goto(self.session.cursor.index)
            self.refresh_views()

        self.app.push_screen(ChoiceScreen("Run to layer (type to filter):",
                                          [(p, p) for p in paths], filter=True), chosen)

    # -- new traces -----------------------------------------------------------------------------------
    def _retrace(self, run, what: str) -> None:
        try:
            run()
        except (ScenarioError, SessionError, ValueError) as error:
            self.notify(escape(str(error)), title=what, severity="error", timeout=8)
            return
        self.reload()
        self.notify(self.session.source, title=what)

    def action_new_batch(self) -> None:
        self._retrace(self.session.new_batch, "new batch")

    def action_next_example(self) -> None:
        self._retrace(self.session.next_example, "next example")

    def action_own_input(self) -> None:
        def chosen(text: str | None) -> None:
            if text:
                self._retrace(lambda: self.session.trace_text(text), "your input")

        examples = ", ".join(repr(e) for e in self.session.scenario.examples[:3])
        self.app.push_screen(PromptScreen(f"Type an input to trace (like {examples}):",
                                          self.session.scenario.examples[0]), chosen)

    def action_break_switch(self) -> None:
        breaks = self.session.breaks

        def chosen(name: str | None) -> None:
            if name:
                value = self.session.toggle_break(name)
                self.reload()
                self.notify(f"{name} is now {'ON' if value else 'off'}; trace re-run "
                            f"(loss {self.session.trace.loss:.4f})", title="break-it switch")

        choices = [(f"[{'x' if getattr(breaks, n) else ' '}] {n}", n)
                   for n in self.session.break_names()]
        self.app.push_screen(ChoiceScreen("Toggle a break-it switch (Enter), then the trace "
                                          "re-runs:", choices), chosen)

    # -- checks -------------------------------------------------------------------------------------
    def action_run_checks(self) -> None:
        findings = self.session.run_checks()
        bad = [f for f in findings if not f.ok]
        text = Text()
        text.append(f"{len(findings)} findings, {len(bad)} problems\n\n", style="bold")
        for f in sorted(findings, key=lambda f: f.ok):
            mark = "PASS" if f.ok else f.severity.upper()
            text.append(f"{mark:<8}", style=("bold red" if not f.ok else "green")
                        if self.style.color else "bold")
            text.append(f"{f.check}", style="bold")
            where = f" @ event {f.event_index + 1}" if f.event_index is not None else ""
            text.append(f"{where}\n  {f.message}\n")
        first_bad = next((f.event_index for f in bad if f.event_index is not None), None)
        if first_bad is not None:
            self.session.goto(first_bad)
            self.refresh_views()
            text.append(f"\nThe cursor moved to event {first_bad + 1}, the first one to blame.",
                        style="bold")
        self.app.push_screen(ReportScreen("Built-in checks", text))

    def action_gradient_check(self) -> None:
        try:
            result = self.session.gradient_check()
        except (SessionError, KeyError) as error:
            self.notify(escape(str(error)).strip("'\""), title="gradient check", severity="warning",
                        timeout=8)
            return
        text = Text()
        verdict = "OK" if result.ok else "MISMATCH"
        text.append(f"{result.param}: {verdict}  max err {result.max_rel_error:.3g} "
                    f"(tolerance {result.tolerance:g}, {result.dtype})\n", style="bold")
        # the engine divides by max(|a| + |n|, floor): for gradients near 0 the error is absolute
        text.append(f"err: relative error |a-n|/(|a|+|n|); * absolute below floor "
                    f"{result.floor:.3g}\n\n", style="dim")
        text.append(f"{'element':<14}{'analytic':>12}{'numeric':>12}{'err':>10}\n",
                    style="bold")
        for idx, a, n, r in zip(result.indices, result.analytic, result.numeric,
                                result.rel_error):
            floored = "*" if abs(a) + abs(n) < result.floor else ""
            element = "(" + ", ".join(str(int(i) + 1) for i in idx) + ")"
            text.append(f"{element:<14}{a:>12.4g}{n:>12.4g}"
                        f"{r:>10.2g}{floored}\n")
        text.append(f"\nelement: (row, column) in the parameter, counted from 1\n{result.note}\n",
                    style="dim")
        self.app.push_screen(ReportScreen("Gradient check", text))

    # -- views --------------------------------------------------------------------------------------
    def action_view(self, name: str) -> None:
        if name == "overview" and self.view_name != "overview":
            self._before_overview = self.view_name  # where Esc goes back to
        self.query_one("#views", ContentSwitcher).current = name
        self.refresh_views()

    def close_overview(self) -> None:
        """Back from the overview to the view it was opened from, on the same event."""
        self.action_view(self._before_overview)

    def action_toggle_formula(self) -> None:
        formula = self.query_one(FormulaPanel)
        self._formula_shown = not formula.display
        self._formula_expanded = False
        self.apply_layout()
        self.refresh_views()

    def action_expand_formula(self) -> None:
        """The formula panel with the whole explanation in the view's place, or back."""
        self._formula_expanded = not self._formula_expanded
        if self.compact and self._formula_expanded:
            self._tree_shown = False  # the right column holds the formula
        self.apply_layout()
        self.refresh_views()
        if self._formula_expanded:
            self.query_one(FormulaPanel).focus()

    def action_toggle_tree(self) -> None:
        """Show or hide the layer tree; in the compact layout, the tree or the view."""
        tree = self.query_one(LayerTree)
        self._tree_shown = not tree.display
        self.apply_layout()
        if tree.display:
            tree.focus()
            self.refresh_views()
        else:
            self.query_one(f"#{self.view_name}").focus()

    def action_tensor(self, step: int) -> None:
        self.session.cycle_tensor(step)
        if self.view_name != "tensor":
            self.query_one("#views", ContentSwitcher).current = "tensor"
        self.refresh_views()

    def action_toggle_gradient(self) -> None:
        v = self.session.view
        if self.session.counterpart() is None:
            self.notify(f"{v.tensor} has no {'gradient' if self.session.event.phase == 'forward' else 'value'} "
                        f"recorded at this place", title="tensor <-> gradient")
        v.gradient = not v.gradient
        self.refresh_views()

    def action_toggle_numbers(self) -> None:
        self.session.view.numbers = not self.session.view.numbers
        self.refresh_views()

    def action_toggle_shared_scale(self) -> None:
        v = self.session.view
        v.shared_scale = not v.shared_scale
        self.notify("one shade scale across heads and layers" if v.shared_scale
                    else "each map on its own shade scale", title="shade scale")
        self.refresh_views()

    def action_cycle(self, what: str, step: int) -> None:
        self.session.cycle(what, step)
        self.refresh_views()

    def action_attention_layer(self, step: int) -> None:
        self.session.cycle_attention_layer(step)
        if self.view_name not in ("attention", "overview", "temperature"):
            self.query_one("#views", ContentSwitcher).current = "attention"
        self.refresh_views()

    def action_temperature(self, factor: float) -> None:
        self.session.set_temperature(factor)
        if self.view_name != "temperature":
            self.query_one("#views", ContentSwitcher).current = "temperature"
        self.refresh_views()

