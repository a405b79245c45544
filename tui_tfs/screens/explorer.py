"""The explorer: the layer tree on the left; the formula panel and one view on the right; the
status line and the keys at the bottom. Every action is a Binding with a description, so it is
in the footer (the stepping keys), the command palette (all) and the help screen (all).

State: what the screen shows is one value, `state` (an `ExplorerState`), held in a reactive.
An action either replaces it (`dataclasses.replace`: a view, a panel, a view choice) or moves
the session and then `observe`s it; `watch_state` draws whenever the new value differs from the
last, so no action redraws by hand and a key that changes nothing draws nothing.
Attributes down: the drawing hands the session to the tree, the status line, the formula panel
and the visible view. Messages up: the tree posts `EventPicked`.
"""
from __future__ import annotations

from dataclasses import replace

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import ContentSwitcher

from scenarios import ScenarioError

from ..memory import give_back_memory
from ..check_reports import checks_report, gradient_check_report
from ..explorer_state import WHOLE_MODEL_VIEWS, ExplorerState
from ..messages import EventPicked
from ..style import Style
from ..session import Session, SessionError
from ..widgets import (AttentionOverview, AttentionView, EmbeddingView, FormulaPanel,
                       GradNormView, LayerTree, PositionalView, ScalingView, StatusLine,
                       TemperatureView, TensorView)
from ..widgets.logit_lens import LogitLensView
from ..widgets.footer import FittingFooter
from ..source import SourceError, op_source
from .dialogs import ChoiceScreen, PromptScreen, ReportScreen
from .source import SourceScreen
from .explorer_keys import SCREEN_BINDINGS, STEP_BINDINGS, TRACE_BINDINGS, VIEW_BINDINGS



class ExplorerScreen(Screen[None]):
    """Step through one trace of one scenario."""

    DEFAULT_CSS = """
    ExplorerScreen #main { height: 1fr; }
    ExplorerScreen #right {
        width: 1fr;
        height: 1fr;
    }
    ExplorerScreen #views { height: 1fr; }
    """

    BINDINGS = STEP_BINDINGS + TRACE_BINDINGS + VIEW_BINDINGS + SCREEN_BINDINGS
    GROUPS = [("Stepping", STEP_BINDINGS), ("Trace and checks", TRACE_BINDINGS),
              ("Views", VIEW_BINDINGS), ("Screen", SCREEN_BINDINGS)]

    state: reactive[ExplorerState] = reactive(ExplorerState, init=False, repaint=False)
    """What the screen shows, as one value: assigning a different one redraws (watch_state)."""

    def __init__(self, session: Session, style: Style, closes_session: bool = False) -> None:
        """`closes_session`: the session is this screen's own (an inspector's), closed with it."""
        super().__init__()
        self.session = session
        self.style = style
        self.closes_session = closes_session
        # reopened from the picker: the view it was left in (the overview's "back" is lost)
        shown = session.shown_view if session.shown_view not in WHOLE_MODEL_VIEWS else "tensor"
        self.set_reactive(ExplorerScreen.state, self.observed(shown=shown))

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield LayerTree(id="tree")
            with Vertical(id="right"):
                yield FormulaPanel(id="formula")
                with ContentSwitcher(initial=self.state.shown, id="views"):
                    yield TensorView(id="tensor")
                    yield AttentionView(id="attention")
                    yield AttentionOverview(id="overview")
                    yield GradNormView(id="grads")
                    yield PositionalView(id="positional")
                    yield EmbeddingView(id="embedding")
                    yield TemperatureView(id="temperature")
                    yield ScalingView(id="scaling")
                    yield LogitLensView(id="lens")
            yield from self.compose_beside()
        yield StatusLine(id="status")
        yield FittingFooter()

    def compose_beside(self) -> ComposeResult:
        """Panels right of the views (a lesson's explorer puts its lesson pane there)."""
        return iter(())

    def on_resize(self) -> None:
        self.app.check_size()
        self.observe()

    def on_mount(self) -> None:
        tree = self.query_one(LayerTree)
        tree.use_style(self.style)
        self.set_reactive(ExplorerScreen.state, self.observed())
        self.show_state(None, self.state)
        tree.focus()

    def on_screen_resume(self) -> None:
        """Back from training (or a dialog): the trace may have been re-recorded and the
        terminal resized meanwhile."""
        if self.is_mounted:
            self.observe()

    # -- the state and what follows from it -----------------------------------------------------------
    @property
    def compact(self) -> bool:
        """Below 80x23: one panel at a time (the tree or the view), the formula folded away."""
        return bool(getattr(self.app, "compact", False))

    @property
    def view_name(self) -> str:
        return self.state.shown

    def on_unmount(self) -> None:
        """Removed (after its widgets): keep no trace alive from here. An inspector's own
        session is closed and its memory given back (tui_tfs.memory says why)."""
        self.set_reactive(ExplorerScreen.state, replace(self.state, trace=None))
        if self.closes_session:
            self.session.close()
            give_back_memory()

    def observed(self, **changes) -> ExplorerState:
        """The state with the session's cursor, trace and view choices and the terminal's
        layout read in, then `changes` (fields of ExplorerState) made."""
        s = self.session
        state = replace(self.state, view=s.view, event=s.cursor.index, level=s.cursor.level,
                        trace=s.trace, trace_id=id(s.trace))
        return replace(state.laid_out(self.compact), **changes)

    def observe(self, **changes) -> None:
        """After the session moved (a step, a search, a new trace): take its state. Nothing is
        drawn unless that differs from what is on screen."""
        self.state = self.observed(**changes)

    def watch_state(self, old: ExplorerState, new: ExplorerState) -> None:
        if self.is_mounted:
            self.show_state(old, new)

    def show_state(self, old: ExplorerState | None, new: ExplorerState) -> None:
        """Draw `new`: the session takes its view choices; a new trace rebuilds the tree; a new
        layout shows and hides panels; then the tree's cursor, the status line, the formula
        (when shown) and the visible view are drawn again."""
        self.session.view = new.view
        if old is None or new.trace_id != old.trace_id:
            self.query_one(LayerTree).load(new.trace)
        switcher = self.query_one("#views", ContentSwitcher)
        if switcher.current != new.shown:
            switcher.current = new.shown
        if old is not None and new.layout() != old.layout():
            # panels come, go and change size: draw at their new widths, after the layout
            self.apply_layout(new)
            self.call_after_refresh(self.draw)
            return
        if old is None:
            self.apply_layout(new)
        self.draw()

    def draw(self) -> None:
        """The tree's cursor, the status line, the formula (when shown) and the visible view,
        as the state says."""
        if not self.is_attached:  # a draw put off until after a layout, the screen gone since
            return
        s, state = self.session, self.state
        self.query_one(LayerTree).show_event(state.event)
        self.query_one(StatusLine).show(s, self.style)
        formula = self.query_one(FormulaPanel)
        if formula.display:
            formula.show(s, self.style)
        view = self.query_one(f"#{state.shown}")
        view.show(s, self.style)
        view.border_title = self._view_title(state)

    def apply_layout(self, state: ExplorerState) -> None:
        """Show the panels the size and the user's `L`, `f`, `F` choices ask for. In the compact
        layout the tree and the right column take turns; the formula is off unless asked."""
        tree = self.query_one(LayerTree)
        tree.display = state.tree_shown
        tree.border_title = self.session.scenario.name + (" (Enter/L: view)" if state.compact
                                                          else "")
        self.query_one("#right").display = state.right_shown
        formula = self.query_one(FormulaPanel)
        formula.display = state.formula_shown
        formula.set_class(state.formula_expanded, "-expanded")
        self.query_one("#views").display = not state.formula_expanded
        if not tree.display and tree.has_focus:
            self.query_one(f"#{state.shown}").focus()
        self.set_class(state.compact, "-compact")
        self.query_one(f"#{state.shown}").border_title = self._view_title(state)

    @staticmethod
    def _view_title(state: ExplorerState) -> str:
        flip = " (L: tree)" if state.compact else ""
        return {"tensor": "tensor", "attention": "attention map", "overview": "attention overview",
                "grads": "gradient norms", "positional": "positional encoding",
                "embedding": "embeddings", "temperature": "softmax temperature",
                "scaling": "scaling by 1/sqrt(d_k)", "lens": "logit lens"}[state.shown] + flip

    # -- messages up --------------------------------------------------------------------------------
    def on_event_picked(self, message: EventPicked) -> None:
        self.session.goto(message.index)
        if self.compact and self.state.tree_shown:  # one panel at a time: the picked event's view
            self.observe(tree=False)
            self.query_one(f"#{self.state.shown}").focus()
        else:
            self.observe()

    # -- stepping -----------------------------------------------------------------------------------
    def action_step(self, how: str) -> None:
        self.session.step(how)
        self.observe()

    def action_find_nonfinite(self) -> None:
        if not self.session.find("nonfinite"):
            self.notify("no NaN or Inf after this event", title="run to NaN/Inf")
        self.observe()

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
            self.observe()

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
            self.observe()

        self.app.push_screen(ChoiceScreen("Run to layer (type to filter):",
                                          [(p, p) for p in paths], filter=True), chosen)

    # -- new traces -----------------------------------------------------------------------------------
    def _retrace(self, run, what: str) -> None:
        try:
            run()
        except (ScenarioError, SessionError, ValueError) as error:
            self.notify(escape(str(error)), title=what, severity="error", timeout=8)
            return
        self.observe()
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
                self.observe()
                self.notify(f"{name} is now {'ON' if value else 'off'}; trace re-run "
                            f"(loss {self.session.trace.loss:.4f})", title="break-it switch")

        choices = [(f"[{'x' if getattr(breaks, n) else ' '}] {n}", n)
                   for n in self.session.break_names()]
        self.app.push_screen(ChoiceScreen("Toggle a break-it switch (Enter), then the trace "
                                          "re-runs:", choices), chosen)

    def action_show_code(self) -> None:
        """The engine function that emitted the current event, the op's lines marked."""
        try:
            source = op_source(self.session.event.where)
        except (SourceError, OSError, SyntaxError) as error:
            self.notify(escape(str(error)), title="code", severity="warning", timeout=8)
            return
        self.app.push_screen(SourceScreen(self.session.event, source, self.style))

    # -- checks -------------------------------------------------------------------------------------
    def action_run_checks(self) -> None:
        findings = self.session.run_checks()
        first_bad = next((f.event_index for f in findings
                          if not f.ok and f.event_index is not None), None)
        if first_bad is not None:
            self.session.goto(first_bad)
            self.observe()
        self.app.push_screen(ReportScreen("Built-in checks",
                                          checks_report(findings, first_bad, self.style)))

    def action_gradient_check(self) -> None:
        try:
            result = self.session.gradient_check()
        except (SessionError, KeyError) as error:
            self.notify(escape(str(error)).strip("'\""), title="gradient check", severity="warning",
                        timeout=8)
            return
        self.app.push_screen(ReportScreen("Gradient check", gradient_check_report(result)))

    # -- views --------------------------------------------------------------------------------------
    def action_view(self, name: str) -> None:
        self.state = self.state.showing(name)

    def action_back(self) -> None:
        """Esc, one level back: from the attention overview (`A`) or the logit lens (`W`) to
        the view it was opened from, on the same event; from the explorer to the scenario
        picker (the session keeps its trace and cursor, so nothing is lost and nothing is
        asked)."""
        if self.state.shown in WHOLE_MODEL_VIEWS:
            self.state = self.state.showing(self.state.before_overview)
        else:
            self.session.shown_view = self.state.shown
            self.app.pop_screen()

    def action_toggle_formula(self) -> None:
        self.state = replace(self.state, formula=not self.state.formula_shown,
                             formula_expanded=False)

    def action_expand_formula(self) -> None:
        """The formula panel with the whole explanation in the view's place, or back."""
        expanded = not self.state.formula_expanded
        tree = False if self.state.compact and expanded else self.state.tree  # room for it
        self.state = replace(self.state, formula_expanded=expanded, tree=tree)
        if expanded:
            self.query_one(FormulaPanel).focus()

    def action_toggle_tree(self) -> None:
        """Show or hide the layer tree; in the compact layout, the tree or the view."""
        self.state = replace(self.state, tree=not self.state.tree_shown)
        if self.state.tree_shown:
            self.query_one(LayerTree).focus()
        else:
            self.query_one(f"#{self.state.shown}").focus()

    def action_tensor(self, step: int) -> None:
        self.session.cycle_tensor(step)
        self.observe(shown="tensor")

    def action_toggle_gradient(self) -> None:
        v = self.state.view
        if self.session.counterpart() is None:
            self.notify(f"{v.tensor} has no {'gradient' if self.session.event.phase == 'forward' else 'value'} "
                        f"recorded at this place", title="tensor <-> gradient")
        self.state = replace(self.state, view=replace(v, gradient=not v.gradient))

    def action_toggle_numbers(self) -> None:
        v = self.state.view
        self.state = replace(self.state, view=replace(v, numbers=not v.numbers))

    def action_toggle_shared_scale(self) -> None:
        v = replace(self.state.view, shared_scale=not self.state.view.shared_scale)
        self.notify("one shade scale across heads and layers" if v.shared_scale
                    else "each map on its own shade scale", title="shade scale")
        self.state = replace(self.state, view=v)

    def action_cycle(self, what: str, step: int) -> None:
        self.session.cycle(what, step)
        self.observe()

    def action_attention_layer(self, step: int) -> None:
        self.session.cycle_attention_layer(step)
        shown = self.state.shown
        self.observe(shown=shown if shown in ("attention", "overview", "temperature", "scaling")
                     else "attention")

    def action_lens_page(self, step: int) -> None:
        """The logit lens's next or previous page of positions (as many as the panel fits)."""
        lens = self.query_one(LogitLensView)
        start = lens.page_start(step) if self.state.shown == "lens" else self.state.view.lens_start
        self.state = replace(self.state.showing("lens"),
                             view=replace(self.state.view, lens_start=start))

    def action_temperature(self, factor: float) -> None:
        self.session.set_temperature(factor)
        self.observe(shown="temperature")
