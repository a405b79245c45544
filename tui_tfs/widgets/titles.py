"""Border titles that fit their box: cut with our ellipsis ('...' in ASCII), not Textual's '…',
which an ASCII-only terminal cannot show."""
from __future__ import annotations

from ..render import fit_label
from ..style import Style

TITLE_FRAME = 6  # '╭─ ' before the title and ' ─╮' after it


def fit_title(widget, title: str, style: Style) -> None:
    """Set `widget`'s border title to `title`, cut to the box's width once it has one."""
    room = widget.outer_size.width - TITLE_FRAME
    widget.border_title = fit_label(title, room, style) if room > 0 else title
