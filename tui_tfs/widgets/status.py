"""The status line: any break-it switch that is on, phase, event i/N, loss, and the stepping
level with the rest of the path."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..render import fit_label
from ..style import Style

LEVEL_SPLIT = {False: "›", True: ">"}  # between the stepping level and the rest of the path


def status_text(session, style: Style, width: int | None = None) -> Text:
    """One line of at most `width` cells. A broken switch comes first so no long path can push
    it off; the path goes last and loses its start (…) when the line is too short for it."""
    e = session.event
    arrows = ({"forward": ">>", "update": "=>"} if style.ascii else
              {"forward": "▶", "update": "⇒"})  # the layer tree's glyphs; backward otherwise
    arrow = arrows.get(e.phase, "<<" if style.ascii else "◀")
    breaks = session.breaks.active()
    level = session.level_path()
    rest = e.path[len(level) + 1:]  # the level is a prefix of the path
    split = f" {LEVEL_SPLIT[style.ascii]} "
    for phase_word in (True, False):  # a narrow line drops the phase's word, keeps its glyph
        text = Text(no_wrap=True, overflow="ellipsis")
        if breaks:
            text.append("BROKEN: " + ",".join(breaks), style="bold red" if style.color else "bold")
            text.append("  ")
        phase_style = ("bold green" if e.phase == "forward" else "bold magenta") \
            if style.color else "bold"
        text.append(f"{arrow} {e.phase} " if phase_word else f"{arrow} ", style=phase_style)
        text.append(f"{e.index + 1}/{len(session.trace)}  loss {session.trace.loss:.4f}  ")
        room = None if width is None else width - text.cell_len
        last = e.path.rsplit(".", 1)[-1]
        if room is None or room >= len(last) + 3 or not phase_word:
            break
    path = Text("level ")
    path.append(level, style="bold")
    if rest:
        path.append(split + rest)
    if room is not None and path.cell_len > room:
        # cut from the start: the end of a path says where the cursor is
        plain = level + split + rest if rest else level
        path = Text(fit_label(plain, max(room, 0), style, keep_end=True))
    text.append_text(path)
    return text


class StatusLine(Static):
    """One line under the views; the phase is a word and a glyph, never colour alone.

    The event's path is split at the cursor's level, the node that `o`, `O` and `u` step from:
    "level decoder.blocks.0 › self_attn.softmax" means `o` runs past the rest of
    decoder.blocks.0 and `u` out of decoder. After `n` or `p` the level is the whole path.
    """

    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        background: $boost;
        padding: 0 1;
    }
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shown: tuple[object, Style] | None = None

    def show(self, session, style: Style) -> None:
        self._shown = (session, style)
        width = self.content_size.width or None
        self.update(status_text(session, style, width), layout=False)  # one fixed line

    def on_resize(self) -> None:
        if self._shown is not None:
            self.show(*self._shown)
