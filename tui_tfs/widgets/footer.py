"""A footer whose keys read whole at any width: keys that do not fit are left out, never cut.

Textual's compact footer crops its last key at the terminal's edge ("^t Tr") and docks the
palette key over whatever is under it. This one drops the palette key first, then keys from
the end, and always keeps `?` (the help lists every key, and Ctrl+P searches them) and the
keys a screen names in its FOOTER_KEEPS (actions).

Textual's footer makes new keys on every recompose (each resize, each return to the screen,
each change of focus), and each new key registers a watcher of the footer's `compact` on the
footer; Textual drops a watcher only when `compact` changes, which never happens here. The
list would keep every key ever made, with its render caches, alive as long as the screen
(about 1.5 MB more per visit to the training screen): this footer keeps only its current keys'.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

HELP_ACTION = "app.help"
PALETTE_WIDTH = 12  # "▏^p palette" and the column before it


def _width(key: FooterKey) -> int:
    """Columns of a compact key: 'n Next' and the gap after it."""
    description = Text(key.description).cell_len
    return Text(key.key_display).cell_len + (1 + description if description else 0) + 1


class FittingFooter(Footer):
    """`Footer(compact=True)` that leaves out what does not fit (see the module docstring)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("compact", True)
        super().__init__(*args, **kwargs)

    def compose(self) -> ComposeResult:
        items = list(super().compose())
        room = self.size.width or self.app.size.width
        palette = [w for w in items if isinstance(w, FooterKey) and w.has_class("-command-palette")]
        keys = [w for w in items if w not in palette]
        used = sum(_width(k) if isinstance(k, FooterKey) else 0 for k in keys)
        if palette and used + PALETTE_WIDTH > room:
            palette = []
        kept = {HELP_ACTION, *getattr(self.screen, "FOOTER_KEEPS", ())}
        while used > room:
            droppable = [k for k in keys if not (isinstance(k, FooterKey)
                                                 and k.action in kept)]
            if not droppable:
                break
            last = droppable[-1]
            keys.remove(last)
            used -= _width(last) if isinstance(last, FooterKey) else 0
        self.styles.grid_size_columns = max(1, len(keys))
        self._forget_old_keys(keys + palette)
        yield from keys
        yield from palette

    def _forget_old_keys(self, current: list) -> None:
        """Drop the `compact` watchers of keys that are not `current` (see the module docstring);
        a key's own watcher has set its `compact` already, when it was made."""
        watchers = getattr(self, "__watchers", {}).get("compact")
        if watchers:
            ids = {id(key) for key in current}
            watchers[:] = [(node, callback) for node, callback in watchers if id(node) in ids]

    def on_resize(self) -> None:
        self.refresh(recompose=True)
