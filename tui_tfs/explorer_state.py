"""What the explorer shows, as one value: the session's cursor, trace and view choices, the view
on screen and the panels the layout shows. The explorer holds it in a Textual reactive and
redraws when a new value differs from the last; nothing here imports Textual.

    state = replace(state, shown="grads")           # d: the gradient-norm view
    state = state.showing("overview")               # A: remembers the view Esc goes back to
    state = state.laid_out(compact=True)            # the terminal shrank below 80x23
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .session_views import ViewState

VIEWS = ("tensor", "attention", "overview", "grads", "positional", "embedding", "temperature",
         "scaling", "lens")
WHOLE_MODEL_VIEWS = ("overview", "lens")  # opened over a view; Esc goes back to that view


@dataclass(frozen=True)
class ExplorerState:
    """Everything a redraw of the explorer depends on. Compared field by field: a key that
    changes nothing (n on the last event) gives an equal state and draws nothing."""

    view: ViewState = ViewState()  # the session's choices: tensor, item, head, stage ...
    event: int = 0  # the cursor's event index (0-based; the screen counts from 1)
    level: int = 1  # the cursor's level: path components of the node o/O/u step from
    trace: object = field(default=None, compare=False)  # the Trace shown (compared by trace_id)
    trace_id: int = 0  # id(trace): a new trace rebuilds the tree. Both traces are alive while
    #                    two states are compared, so the ids differ
    shown: str = "tensor"  # the view in the right column, one of VIEWS
    before_overview: str = "tensor"  # the view the overview (A) or the lens (W) was opened
    #                                  from: Esc's target
    compact: bool = False  # below 80x23: one panel at a time, the formula folded away
    tree: bool | None = None  # L in this layout: shown or not; None as the size suggests
    formula: bool | None = None  # f in this layout: shown or not; None as the size suggests
    formula_expanded: bool = False  # F: the formula panel takes the right column

    @property
    def tree_shown(self) -> bool:
        return (not self.compact) if self.tree is None else self.tree

    @property
    def formula_shown(self) -> bool:
        return self.formula_expanded or ((not self.compact) if self.formula is None
                                         else self.formula)

    @property
    def right_shown(self) -> bool:
        """The formula and view column: beside the tree, or instead of it when compact."""
        return not (self.compact and self.tree_shown)

    def layout(self) -> tuple:
        """The fields the panels' sizes and visibility depend on."""
        return self.compact, self.tree_shown, self.formula_shown, self.formula_expanded

    def showing(self, name: str) -> ExplorerState:
        """`name` in the right column; opening the overview or the lens remembers where it
        came from."""
        if name not in VIEWS:
            raise ValueError(f"no view {name!r}; views are {VIEWS}")
        before = self.shown if name in WHOLE_MODEL_VIEWS and self.shown not in WHOLE_MODEL_VIEWS \
            else self.before_overview
        return replace(self, shown=name, before_overview=before)

    def laid_out(self, compact: bool) -> ExplorerState:
        """The layout for the terminal's size: L and f choices belong to the layout they were
        made in, so a change of layout forgets them."""
        if compact == self.compact:
            return self
        return replace(self, compact=compact, tree=None, formula=None)
