"""The training screen's ways into the explorer: `i` on the live model and the latest training
batch, `n` on exactly one training step recorded (forward, loss, backward, the optimizer's
update), and, when a step goes non-finite, the offer to open the explorer at the first NaN/Inf.

A mixin of TrainingScreen: it reads the screen's controller, session and style, sets
`_after_pause` (what to open once a running thread has paused: the screen's
`on_training_stopped` calls back here) and `inspecting` (the session the explorer shows, whose
weights come back into the run), and redraws with `refresh_all`. Each opening is refused past
class mode's memory limit (`app.memory_allows`): a traced session costs tens of MB.
"""
from __future__ import annotations

import numpy as np

from ..session import Session
from ..training import DIVERGED
from .dialogs import ChoiceScreen


class InspectActions:
    """The i and n keys of the training screen, and the question a divergence asks."""

    def action_inspect(self) -> None:
        if self.controller.running:
            self._after_pause = "inspect"
            self.controller.request("pause")
            self.notify("pausing; the explorer opens after this step", title="inspect")
        else:
            self.open_inspector(at_nan=self.controller.state == DIVERGED)

    def action_one_step(self) -> None:
        if self.controller.running:
            self._after_pause = "one_step"
            self.controller.request("pause")
            self.notify("pausing; then one step is trained and traced", title="one step")
        else:
            self.open_step_trace()

    def open_step_trace(self) -> None:
        """Train exactly one step, recorded, and open the explorer on its trace: forward, loss,
        backward, then the optimizer's update. The explorer's model holds the weights the step
        started from (its forward and backward ran on them; the update events show the weights
        after), so nothing it does changes the run."""
        c = self.controller
        if not self.app.memory_allows("no step traced"):
            return
        result = c.step_traced(ascii_only=self.style.ascii)
        self.refresh_all()
        if result is None:
            self.notify(c.notice, title="one step")
            return
        trace, before = result
        s = Session(c.scenario, before, c.trainer.loss_fn, ascii=self.style.ascii)
        s.show(trace, f"training step {c.step} with its {c.config.optimizer} update "
                      f"(U runs to the update)")
        self.inspecting = None  # a copy of the weights: nothing to bring back into the run
        from .explorer import ExplorerScreen

        self.app.push_screen(ExplorerScreen(s, self.style, closes_session=True))

    def open_inspector(self, at_nan: bool = False) -> None:
        """The explorer on the live model and the latest training batch (forward + backward)."""
        if not self.app.memory_allows("the explorer not opened"):
            return
        c = self.controller
        # at a NaN: the weights that gave it (the live model has the last good ones back)
        failed = c.diverged_model() if at_nan else None
        with c.lock:
            s = Session(c.scenario, failed or c.model, c.trainer.loss_fn, ascii=self.style.ascii)
            batch = c.last_batch if c.last_batch is not None else c.scenario.next_batch(
                np.random.default_rng(0))
            which = "the weights that went non-finite" if failed else "live weights"
            s.record(batch, f"training batch of step {c.step} ({which})")
        if at_nan and not _first_nonfinite(s):
            self.notify("this batch gives no NaN/Inf on the current weights", title="inspect")
        self.inspecting = s
        from .explorer import ExplorerScreen

        self.app.push_screen(ExplorerScreen(s, self.style, closes_session=True))

    def _offer_nan(self) -> None:
        s = self.controller.diverged_at

        def chosen(answer: str | None) -> None:
            if answer == "explore":
                self.open_inspector(at_nan=True)

        self.app.push_screen(ChoiceScreen(
            f"Training diverged at step {s.step}: loss {s.loss}, gradient norm {s.grad_norm}. "
            f"Training is paused; the update was undone and "
            + (f"the weights of step {s.weights_of_step}, the last finite loss, are kept."
               if s.weights_of_step else "the initial weights are kept."),
            [("Open the explorer at the first bad event", "explore"),
             ("Stay here (lower the learning rate with -, then space)", "stay")]), chosen)


def _first_nonfinite(session: Session) -> bool:
    """Cursor to the first event holding a NaN/Inf, the first one included."""
    from engine.trace.navigation import has_nonfinite

    found = session.cursor.find_next(has_nonfinite, include_current=True)
    if found:
        session.goto(session.cursor.index)
    return found
