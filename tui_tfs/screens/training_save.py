"""The training screen's `w`: save the run, or the snapshot picked on the timeline, as a
checkpoint, and never over another run's file without asking.

A mixin of TrainingScreen: it reads the screen's controller and `selected_snapshot()`
(training_timeline.py) and redraws with `refresh_all`.

- No snapshot picked: the run goes to its checkpoint path (checkpoints/<name>.safetensors, or
  the checkpoint it was opened from). When a file there holds another run (a checkpoint of an
  earlier session, the run a branch left), the screen asks: save beside it as
  `<name>-2.safetensors` (the run saves there from then on), overwrite it, or cancel.
- A snapshot picked: a path is asked for (default `<name>-step<N>.safetensors`), and a file
  that exists is overwritten only after a question.
"""
from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from engine.training.snapshots import Snapshot

from ..checkpoints import free_path
from .dialogs import ChoiceScreen, PromptScreen


class SaveActions:
    """The w key of the training screen."""

    def action_save(self) -> None:
        picked = self.selected_snapshot()
        if picked is not None:
            self.save_picked(picked)
            return
        c = self.controller
        path = Path(c.checkpoint_path)
        why = c.replaces(path)
        if why is None:
            self._save_run(path)
            return
        beside = free_path(path)

        def chosen(answer: str | None) -> None:
            if answer == "beside":
                self._save_run(beside)
            elif answer == "overwrite":
                self._save_run(path, replace=True)

        self.app.push_screen(ChoiceScreen(
            f"{path} exists: {why}. Where does step {c.step} of this run go?",
            [(f"Beside it, as {beside}", "beside"), ("Over it: that run is lost", "overwrite"),
             ("Cancel: save nothing", None)]), chosen)

    def _save_run(self, path: Path, replace: bool = False) -> None:
        """Save the run to `path` (or beside it, should another process write there first),
        which becomes its checkpoint path: the next w, and saving on quitting, go there too."""
        c = self.controller
        try:
            saved = c.save(path, replace=replace)
        except (OSError, ValueError) as error:
            self.notify(escape(str(error)), title="save", severity="error", timeout=8)
            return
        c.checkpoint_path = saved
        self.notify(escape(f"step {c.step} saved to {saved}"), title="checkpoint")
        self.refresh_all(False)

    def save_picked(self, picked: Snapshot) -> None:
        """`w` with a snapshot picked: a path (asked), a question before overwriting a file."""
        stem = Path(self.controller.checkpoint_path).stem
        default = str(Path("checkpoints") / f"{stem}-step{picked.step}.safetensors")

        def write(path: Path) -> None:
            try:
                saved = self.controller.save_snapshot(picked, path)
            except (OSError, ValueError) as error:
                self.notify(escape(str(error)), title="save", severity="error", timeout=8)
                return
            self.notify(escape(f"step {picked.step} saved to {saved}"), title="checkpoint")
            self.refresh_all(False)

        def chosen(text: str | None) -> None:
            if not text or not text.strip():
                return
            path = Path(text.strip()).expanduser()
            if path.suffix != ".safetensors":
                path = path.with_name(path.name + ".safetensors")
            if path.is_dir():
                self.notify(escape(f"{path} is a folder: type a file name"), severity="error")
            elif path.exists():
                self.app.push_screen(ChoiceScreen(
                    f"{path} exists. Overwrite it with the snapshot of step {picked.step}?",
                    [("Cancel: keep the file", None), ("Overwrite it", "overwrite")]),
                    lambda answer: write(path) if answer == "overwrite" else None)
            else:
                write(path)

        self.app.push_screen(PromptScreen(f"Save the snapshot of step {picked.step} as "
                                          f"(a .safetensors checkpoint):", default, default),
                             chosen)
