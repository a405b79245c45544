"""The branch dialog: the learning rate, the seed and a break-it switch to train on with from a
snapshot. Enter in a field or on a switch branches; Escape cancels; Tab moves between them.

Returns a `BranchSettings` (what changed; None for what did not) or None when cancelled. A bad
number keeps the dialog open and says which field and what it takes.
"""
from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from .dialogs import QUIT_KEY, Dialog

KEEP_SWITCHES = "keep"  # the option id of "no switch flipped"


@dataclass(frozen=True)
class BranchSettings:
    """What a branch changes; None: as the snapshot had it."""

    lr: float | None = None
    seed: int | None = None
    switch: str | None = None  # the break-it switch to flip


class BranchScreen(Dialog[BranchSettings | None]):
    """See the module docstring."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), QUIT_KEY]
    DEFAULT_CSS = """
    BranchScreen .branch-fields { height: 3; }
    BranchScreen .branch-fields Input { width: 1fr; border-title-align: left; }
    BranchScreen #branch-switch { height: auto; max-height: 8; }
    BranchScreen #branch-error { color: $error; height: auto; }
    """

    def __init__(self, step: int, lr: float, seed: int, breaks) -> None:
        super().__init__()
        self._step, self._lr, self._seed, self._breaks = step, lr, seed, breaks

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Branch from step {self._step}: change what, then Enter",
                        classes="dialog-title")
            with Horizontal(classes="branch-fields"):
                lr = Input(value=f"{self._lr:g}", id="branch-lr")
                lr.border_title = "peak learning rate"
                seed = Input(value=str(self._seed), id="branch-seed")
                seed.border_title = "seed (batches)"
                yield lr
                yield seed
            names = list(self._breaks.__dataclass_fields__)
            yield OptionList(Option("no switch flipped", id=KEEP_SWITCHES),
                             *[Option(f"flip {n} ({'on' if getattr(self._breaks, n) else 'off'}"
                                      f" now)", id=n) for n in names], id="branch-switch")
            yield Label("", id="branch-error")

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0
        self.query_one("#branch-lr", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._submit()

    def _submit(self) -> None:
        error = self.query_one("#branch-error", Label)
        lr_text = self.query_one("#branch-lr", Input).value.strip()
        seed_text = self.query_one("#branch-seed", Input).value.strip()
        try:
            lr = float(lr_text)
            if not lr > 0 or lr == float("inf"):
                raise ValueError
        except ValueError:
            error.update(f"learning rate: {lr_text!r} is not a positive number (e.g. 3e-3)")
            return
        if not seed_text.isdigit():
            error.update(f"seed: {seed_text!r} is not a whole number >= 0 (e.g. 7)")
            return
        seed = int(seed_text)
        options = self.query_one(OptionList)
        highlighted = options.highlighted or 0
        switch = options.get_option_at_index(highlighted).id
        self.dismiss(BranchSettings(lr=None if lr == self._lr else lr,
                                    seed=None if seed == self._seed else seed,
                                    switch=None if switch == KEEP_SWITCHES else switch))

    def action_cancel(self) -> None:
        self.dismiss(None)
