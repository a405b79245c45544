"""What a check returns: a `Finding`, and the severities it can have."""
from __future__ import annotations

from dataclasses import dataclass

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass
class Finding:
    """One result of one check. `ok` False means something is wrong (see `severity`)."""

    check: str  # name of the check: "softmax_rows", "masked_zero", ...
    ok: bool  # True: the check passed (or was skipped, see severity "info")
    severity: str  # "error" (wrong numbers), "warning" (a part is switched off), "info"
    message: str  # plain words: what is wrong, where, and why it matters
    event_index: int | None = None  # the event to jump to, if one is to blame
    path: str | None = None  # dotted place in the model, if known


def passed(check: str, message: str) -> list[Finding]:
    return [Finding(check, True, INFO, message)]
