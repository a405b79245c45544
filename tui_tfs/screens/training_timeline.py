"""The training screen's timeline: pick a snapshot, explore the model as it was then, branch
from it, and keep one of two runs (saving it as a checkpoint: training_save.py).

A mixin of TrainingScreen: it reads the screen's controller, session, style and
`selected_step` (the step of the picked snapshot; None: none picked, the plot shows now), and
redraws with `refresh_all`. ← and → move over the snapshots (→ past the latest lets go of the
pick), Home and End jump to the first and the latest; the plot's bottom border says which
one is picked, its step and its loss.
"""
from __future__ import annotations

from rich.markup import escape

from engine.training.snapshots import Snapshot

from ..session import Session
from .branch_dialog import BranchScreen, BranchSettings
from .dialogs import ChoiceScreen


class TimelineActions:
    """The ← → Home End o b and K keys of the training screen."""

    def selected_snapshot(self) -> Snapshot | None:
        """The picked snapshot, or the nearest kept one when thinning took it (the pick moves
        to it); None when none is picked."""
        if self.selected_step is None:
            return None
        snapshot = self.controller.snapshots.nearest(self.selected_step)
        self.selected_step = None if snapshot is None else snapshot.step
        return snapshot

    def selected_index(self, kept: list[Snapshot]) -> int | None:
        steps = [s.step for s in kept]
        return steps.index(self.selected_step) if self.selected_step in steps else None

    def timeline_title(self) -> str:
        """The plot's bottom border: the pick's number, step and loss, or how to pick one."""
        kept = self.controller.snapshots.kept
        picked = self.selected_snapshot()
        arrows = "<- ->" if self.style.ascii else "← →"
        if not kept:
            return "no snapshots: model too large"
        if picked is None:
            return f"{len(kept)} snapshots ({arrows})"
        at = self.selected_index(kept)
        loss = "before training" if picked.step == 0 else (
            f"loss {picked.loss:.4g}" if picked.loss is not None else "loss not measured")
        return f"{at + 1}/{len(kept)}: step {picked.step}, {loss} (o b w)"

    def action_timeline(self, by: int) -> None:
        """One snapshot earlier (by < 0) or later; later than the latest lets go of the pick."""
        kept = self.controller.snapshots.kept
        if not kept:
            self.action_timeline_end("first")  # says why there are none
            return
        self.selected_snapshot()
        at = self.selected_index(kept)
        if at is None:
            at = len(kept) if by < 0 else None
        if at is None:
            self.notify(f"the timeline shows now; {'<-' if self.style.ascii else '←'} picks "
                        f"the latest snapshot", title="timeline")
            return
        at += by
        self.selected_step = kept[max(0, at)].step if at < len(kept) else None
        self.refresh_all(False)

    def action_timeline_end(self, which: str) -> None:
        kept = self.controller.snapshots.kept
        if not kept:
            self.notify("no snapshots: the model is too large for their memory budget",
                        title="timeline")
            return
        self.selected_step = kept[0 if which == "first" else -1].step
        self.refresh_all(False)

    def _picked_or_say(self, what: str) -> Snapshot | None:
        picked = self.selected_snapshot()
        if picked is None:
            arrow = "<-" if self.style.ascii else "←"
            self.notify(f"pick a snapshot on the timeline first ({arrow}), then {what}",
                        title="timeline")
        return picked

    def action_open_snapshot(self) -> None:
        """The explorer on the model as it was at the picked snapshot, on the input the
        explorer showed (the same view), a copy: nothing done there changes the run."""
        picked = self._picked_or_say("o opens it")
        if picked is None or not self.app.memory_allows("the snapshot not opened"):
            return
        from .explorer import ExplorerScreen

        main = self.session
        s = Session(main.scenario, picked.model(), self.controller.trainer.loss_fn,
                    ascii=self.style.ascii)
        # the explorer below (training opened from it) shows a view on an event: the same here
        below = [x for x in self.app.screen_stack if isinstance(x, ExplorerScreen)
                 and x.session is main]
        s.view = main.view
        s.shown_view = below[-1].state.shown if below else main.shown_view
        if main.trace is not None:
            s.record(main.trace.batch, f"{main.source}, weights of step {picked.step}")
            at = main.cursor.event
            same = [e.index for e in s.trace.events if (e.phase, e.path) == (at.phase, at.path)]
            s.goto(same[0] if same else min(at.index, len(s.trace.events) - 1))
        else:
            s.record(s.trace.batch, f"{s.source}, weights of step {picked.step}")
        self.app.push_screen(ExplorerScreen(s, self.style, closes_session=True))

    def action_branch(self) -> None:
        """Train on from the picked snapshot with another learning rate, seed or switch."""
        c = self.controller
        picked = self._picked_or_say("b branches from it")
        if picked is None:
            return
        if c.running:
            self.notify("pause first (space), then b", title="branch")
            return
        if c.other is not None:
            self.notify("two runs are drawn: K keeps one first", title="branch")
            return
        config = picked.train_config

        def chosen(settings: BranchSettings | None) -> None:
            if settings is None:
                return
            try:
                c.branch(picked, lr=settings.lr, switch=settings.switch, seed=settings.seed)
            except ValueError as error:
                self.notify(escape(str(error)), title="branch", severity="error", timeout=8)
                return
            self.session.model = c.model
            self.selected_step = None
            self.refresh_all()

        self.app.push_screen(BranchScreen(picked.step, config.lr, config.seed,
                                          picked.model_config.breaks), chosen)

    def action_keep(self) -> None:
        """Keep one of the two runs; the other is discarded after a second question."""
        c = self.controller
        other = c.other
        if other is None:
            self.notify("one run only; b branches from a picked snapshot", title="keep")
            return
        if c.running:
            self.notify("pause first (space), then K", title="keep")
            return
        live = f"{c.label} (at step {c.step})"
        parked = f"{other.label} (at step {other.step})"

        def confirmed(which: str | None) -> None:
            if which is None:
                return
            c.keep(which)
            self.session.model = c.model
            self.selected_step = None
            self.refresh_all()

        def chosen(which: str | None) -> None:
            if which is None:
                return
            lost = parked if which == "live" else live
            self.app.push_screen(ChoiceScreen(
                f"Discard the run {lost}? Its steps after step {other.parted_at} are lost.",
                [("Cancel: keep both for now", None), (f"Discard {lost}", which)]), confirmed)

        self.app.push_screen(ChoiceScreen(
            "Keep which run? The other one will be discarded (you are asked again).",
            [(f"Keep {live}, the one training (x on the plot: the other)", "live"),
             (f"Keep {parked}, drawn x", "other"), ("Cancel: keep both for now", None)]),
            chosen)
