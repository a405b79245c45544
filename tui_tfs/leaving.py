"""What leaving the app saves: every run no checkpoint holds, and the run a branch left beside
one, each at the path the quit question names. The question's `s`, and leaving without it (a
closed browser tab, a hung-up terminal, SIGTERM, an error), both save from here.

    pending = pending_saves(app.unsaved_training())   # [PendingSave(...), ...]
    lines = [p.question_line() for p in pending]       # what the quit question lists
    said, failed = save_all(pending)                   # "tui-tfs: saved reverse at step 300 to ..."

No save writes over another run's file: a run saves to its own file (the checkpoint it was
opened from or last saved), else to a new file claimed at its checkpoint path or beside it
(`checkpoints.claim_new_file`), so tabs of one server leaving at once never share a name.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .checkpoints import free_path


@dataclass
class PendingSave:
    """One run to save on leaving: what to call it, where it goes, and how to write it."""

    name: str  # "reverse", or "reverse, the run the branch left (lr 0.003 @300)"
    step: int
    saved_step: int | None  # the step its file holds, None when no file holds it
    running: bool
    path: Path
    write: Callable[[Path], tuple[Path, int]]  # saves at `path` (or beside, if taken
    # meanwhile): where, and the step saved (a run still training saves a step or two later)

    def question_line(self) -> str:
        return (f"  {self.name}: step {self.step}" + (", training now" if self.running else "")
                + (f" (saved: step {self.saved_step})" if self.saved_step is not None else "")
                + f"\n    s saves it to {self.path}")


def save_paths(controllers: list) -> list[Path]:
    """Where each run saves on leaving: its own checkpoint path, unless a file there holds
    another run (a checkpoint of yesterday's reverse, the run a branch left) or an earlier run
    of the list saves there too (the built-in reverse and a reopened
    checkpoints/reverse.safetensors both default to it); then the first free
    `<name>-2.safetensors`, `-3` ..., so that no save overwrites another run's work."""
    taken: set[Path] = set()
    paths = []
    for c in controllers:
        path = Path(c.checkpoint_path)
        if path.resolve() in taken or c.replaces(path):
            path = free_path(path, taken)
        taken.add(path.resolve())
        paths.append(path)
    return paths


def pending_saves(unsaved: list[tuple]) -> list[PendingSave]:
    """The saves leaving makes for `unsaved` ((session, controller) pairs, as
    `TfsApp.unsaved_training` gives them): the live run where it needs saving, then the run
    its branch left, if that holds steps no file holds, in a new file beside."""
    pending = []
    paths = save_paths([c for _, c in unsaved])
    taken = {path.resolve() for path in paths}
    for (session, c), path in zip(unsaved, paths):
        if c.running or c.step != c.saved_step:
            pending.append(PendingSave(session.name, c.step, _held(c.saved, c.saved_step),
                                       c.running, path, partial(_pause_and_save, c)))
        other = c.other
        if other is not None and other.unsaved:
            beside = free_path(Path(c.checkpoint_path), taken)
            taken.add(beside.resolve())
            pending.append(PendingSave(f"{session.name}, the run the branch left "
                                       f"({other.label})", other.step,
                                       _held(other.file, other.saved_step), False, beside,
                                       partial(_save_other, c)))
    return pending


def _pause_and_save(c, path: Path) -> tuple[Path, int]:
    c.request("pause")  # the save waits for the step in flight (the controller's lock)
    return c.save(path), c.saved_step


def _save_other(c, path: Path) -> tuple[Path, int]:
    return c.save_other(path), c.other.step


def _held(file, saved_step: int) -> int | None:
    return saved_step if file is not None and saved_step >= 0 else None


def save_all(pending: list[PendingSave], prefix: str = "") -> tuple[list[str], list[str]]:
    """Write every pending save; (what was saved, what failed and why), a line each. A run
    still training pauses first."""
    said, failed = [], []
    for p in pending:
        try:
            where, step = p.write(p.path)
        except Exception as error:  # noqa: BLE001 (leaving: one failure must not stop the rest)
            failed.append(f"{p.name}: not saved: {error}")
            continue
        said.append(f"tui-tfs: {prefix}saved {p.name} at step {step} to {where}")
    return said, failed
