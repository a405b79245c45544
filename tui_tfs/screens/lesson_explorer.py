"""A lesson's explorer: the explorer at a lesson step's place, with the lesson pane beside the
views. The student reads the step and its question while looking at the views, wanders off with
the ordinary keys, and comes back to the step's place with one key.

From SIDE_BY_SIDE_WIDTH columns the pane stands right of the views (`w` hides or shows it);
narrower (a student's 80x23) the pane and the views take turns, `w` flips between them. The pane
has the focus when it is shown alone; its keys (n, p, g, a) are the lesson screen's. From
anywhere on this screen `>` and `<` turn the lesson's steps, except while the logit lens is
shown: there they page its positions, as in every explorer (the pane's n and p still turn the
steps). `R` goes back to the step's place.

A new step's place is a new session on a copy of the step's model (Session per step), so
whatever the student did (trained, broke a switch, traced an input) is left behind; a model
trained there and not saved is kept with the app (`keep_run`), and quitting asks about it.
"""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding

from ..lesson_pane import PANE_BINDINGS, LessonPane, PlaceWanted, StepReady, StepShown
from ..lessons import LessonRun
from ..style import Style
from ..widgets import LayerTree
from .explorer import ExplorerScreen

SIDE_BY_SIDE_WIDTH = 120  # from here the pane (PANE_WIDTH) fits beside the tree and the views
PANE_WIDTH = 44

LESSON_KEYS = [
    Binding("w", "flip", "Lesson", show=True,
            tooltip="Lesson pane <-> views (wide terminal: show/hide the lesson pane)"),
    Binding("greater_than_sign", "lesson_step(1)", "Next lesson step (logit lens: its page)",
            show=False),
    Binding("less_than_sign", "lesson_step(-1)", "Previous lesson step (logit lens: its page)",
            show=False),
    Binding("R", "back_to_place", "Back to the lesson step's place", show=False),
]


class LessonExplorerScreen(ExplorerScreen):
    """The explorer with a lesson pane: see the module docstring."""

    BINDINGS = LESSON_KEYS + ExplorerScreen.BINDINGS
    GROUPS = [("Lesson (explorer)", LESSON_KEYS),
              ("Lesson pane (when it has the focus)", PANE_BINDINGS[:4])] + ExplorerScreen.GROUPS
    FOOTER_KEEPS = ("flip",)  # at 80 columns the footer drops keys from its end: never this
    DEFAULT_CSS = """
    LessonExplorerScreen #lesson-pane { width: 44; }
    LessonExplorerScreen.-pane-only #lesson-pane { width: 1fr; }
    """

    def __init__(self, run: LessonRun, style: Style) -> None:
        self.lesson_run = run
        super().__init__(run.session(), style)
        self.pane_wanted: bool | None = None  # w: shown or not; None as the width suggests
        self._wide: bool | None = None  # the width class the choice was made in

    def compose_beside(self) -> ComposeResult:
        yield LessonPane(self.lesson_run, id="lesson-pane")

    def on_mount(self) -> None:
        self.app.session = self.session  # Ctrl+T trains the session shown
        if self.session.shown_view != self.state.shown:  # the overview: opened as a key would
            self.call_after_refresh(self.action_view, self.session.shown_view)

    # -- the layout --------------------------------------------------------------------------------
    @property
    def side_by_side(self) -> bool:
        return self.app.size.width >= SIDE_BY_SIDE_WIDTH

    @property
    def pane_shown(self) -> bool:
        if self._wide != self.side_by_side:  # a choice belongs to the width it was made at
            self._wide, self.pane_wanted = self.side_by_side, None
        return self.side_by_side if self.pane_wanted is None else self.pane_wanted

    @property
    def pane(self) -> LessonPane:
        return self.query_one(LessonPane)

    def apply_layout(self, state) -> None:
        super().apply_layout(state)
        self.lay_out_pane()

    def on_resize(self) -> None:  # the explorer's own on_resize runs too (Textual calls both)
        self.lay_out_pane()

    def lay_out_pane(self) -> None:
        """The pane beside the views, or alone in their place, or hidden."""
        shown = self.pane_shown
        alone = shown and not self.side_by_side
        pane = self.pane
        pane.display = shown
        self.set_class(alone, "-pane-only")
        tree = self.query_one(LayerTree)
        tree.display = self.state.tree_shown and not alone
        self.query_one("#right").display = self.state.right_shown and not alone
        if alone and not pane.has_focus_within:
            pane.focus_body()
        elif not shown and pane.has_focus_within:
            (tree if tree.display else self.query_one(f"#{self.state.shown}")).focus()

    def action_flip(self) -> None:
        """w: the lesson pane <-> the views (wide: the pane shown or hidden)."""
        self.pane_wanted = not self.pane_shown
        self.lay_out_pane()
        if self.pane_shown:
            self.pane.focus_body()
        self.call_after_refresh(self.draw)  # the views at their new width

    # -- the lesson's steps ----------------------------------------------------------------------
    def action_lesson_step(self, delta: int) -> None:
        if self.state.shown == "lens":  # the lens's own keys while it is on screen
            self.action_lens_page(delta)
        else:
            self.pane.action_step(delta)

    def action_back_to_place(self) -> None:
        run = self.lesson_run
        if not run.is_ready():
            self.notify("this step is still being prepared", timeout=3)
            return
        self.go_to_place()
        self.notify(f"step {run.index + 1}'s place", title="back", timeout=3)

    def on_place_wanted(self, message: PlaceWanted) -> None:
        self.action_back_to_place()

    def on_step_shown(self, message: StepShown) -> None:
        if message.ready:
            self.go_to_place()

    def on_step_ready(self, message: StepReady) -> None:
        if message.error is None and message.index == self.lesson_run.index:
            self.go_to_place()

    def go_to_place(self) -> None:
        """The views at the current step's place: a new session on a copy of its model."""
        old, session = self.session, self.lesson_run.session()
        self.session = session
        self.app.session = session
        self.observe()
        self.state = self.state.showing(session.shown_view)
        self.keep_run(old)
        old.close()  # no screen shows it again: its trace can go now (a kept run needs none)

    def keep_run(self, session) -> None:
        """A session the student trained, left for another step or the lesson screen: its run,
        if no checkpoint holds it, stays with the app, and quitting asks where to save it."""
        c = session.training
        if c is None or not c.unsaved or session in self.app.runs_left:
            return
        self.app.runs_left.append(session)  # its controller holds the model: no trace needed
        self.app.notify(f"the model trained here (step {c.step}, not saved) is kept: quitting "
                        f"asks where to save it", title="training kept", timeout=8)

    def on_unmount(self) -> None:  # the explorer's own on_unmount runs too
        self.keep_run(self.session)
